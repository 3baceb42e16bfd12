// Faults around a running node, with real erl peers, a real EPMD and a real PostgreSQL: a peer killed with
// SIGKILL in the middle of traffic, PostgreSQL restarted under load, EPMD killed and restarted, and slow
// consumers (an erl process that reads slowly, an erl that stops reading its socket: SIGSTOP). The node runs
// in this process; any uncaught exception or unhandled rejection fails the test that caused it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { promisify } from 'node:util'
import pg from 'pg'
import { cleanup, compileShippedModules, Epmd, ErlNode, eventually, freePort, pgUrl, requirePostgres, shortHost, sleep } from './harness.js'
import { peerBeamDir } from './fuzz/scenario.js'
import { Node, type NodeOptions } from '../src/node.js'
import { startDrivers, type Drivers } from '../src/drivers/driver.js'
import { atom, Pid, Ref, Tuple, tuple, type Term } from '../src/etf/terms.js'
import { binaryToTerm } from '../src/etf/index.js'
import type { Logger } from '../src/logger.js'

const execFileP = promisify(execFile)
const COOKIE = 'ts_cnode_faults_cookie'
let epmd: Epmd
let shipped: string
let peerBeams: string
const nodes: Node[] = []
const drivers: Drivers[] = []
let uniq = 0
const uname = (b: string) => `${b}${process.pid % 10000}x${uniq++}`

const uncaught: unknown[] = []
const onUncaught = (e: unknown) => void uncaught.push(e)
process.on('uncaughtException', onUncaught)
process.on('unhandledRejection', onUncaught)
const assertNoCrash = () => assert.equal(uncaught.map(String), [], 'the node threw out of its event handlers')

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = []
  const rec = (level: string) => (m: string) => void lines.push(`${level}: ${m}`)
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

async function tsNode(opts: Partial<NodeOptions> = {}, withDrivers = false) {
  const logs = recorder()
  const node = new Node({ name: uname('tsf'), cookie: COOKIE, epmdPort: epmd.port, logger: logs, ...opts })
  await node.start()
  nodes.push(node)
  if (withDrivers) drivers.push(await startDrivers(node, { count: 16 }))
  node.spawn(
    async (self) => {
      self.trapExit = true
      for await (const m of self.mailbox) if (m instanceof Tuple && m.get(0) instanceof Pid) self.send(m.get(0) as Pid, tuple(atom('echo'), m))
    },
    { name: 'ts_echo' },
  )
  return { node, logs, full: node.name.name }
}

function erlNode(name: string, tsFull?: string) {
  return ErlNode.start({
    name,
    cookie: COOKIE,
    epmdPort: epmd.port,
    codePath: [shipped, peerBeams],
    env: tsFull ? { TS_CNODE_NODE: tsFull } : {},
  })
}

async function backends(url: string, app: string): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [app])).rows[0].n as number
  } finally {
    await c.end()
  }
}

const withApp = (url: string, app: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${app}`

test.before(async () => {
  epmd = await Epmd.start()
  shipped = await compileShippedModules()
  peerBeams = await peerBeamDir()
})

test.after(async () => {
  for (const d of drivers) await d.stop()
  await Promise.all(nodes.map((n) => n.stop()))
  await cleanup()
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUncaught)
})

test('a peer killed with SIGKILL mid-traffic: every link and monitor to its processes fires noconnection; its pg sessions close', async () => {
  await requirePostgres()
  const { node, full } = await tsNode({}, true)
  const app = `ts_cnode_kill_${process.pid}_${uniq++}`
  // For every erl process announced to it, a TS process links to it (trapping exits) and monitors it.
  const fired: Array<{ pid: Pid; exit?: Term; down?: Term }> = []
  node.spawn(
    async (self) => {
      for await (const m of self.mailbox) {
        if (!(m instanceof Tuple) || m.get(0) !== atom('watch') || !(m.get(1) instanceof Pid)) continue
        const pid = m.get(1) as Pid
        const rec: (typeof fired)[number] = { pid }
        fired.push(rec)
        self.spawn(async (w) => {
          w.trapExit = true
          w.link(pid)
          const ref = w.monitor(pid)
          while (rec.exit === undefined || rec.down === undefined) {
            const x = (await w.receive()) as Tuple
            if (x.get(0) === atom('EXIT') && x.get(1) instanceof Pid) rec.exit = x.get(2)
            if (x.get(0) === atom('DOWN') && x.get(1) instanceof Ref && (x.get(1) as Ref).ids.join() === ref.ids.join()) rec.down = x.get(4)
          }
        })
      }
    },
    { name: 'fault_watch' },
  )
  const erlName = uname('victim')
  const erl = await erlNode(erlName, full)
  const url = withApp(pgUrl, app)
  // Eight erl processes, each with a pg session, selecting and exchanging messages with the TS node non-stop.
  await erl.eval(
    `ts_peer:workers(8, {fault_watch, '${full}'}, fun() -> {ok, P} = pg_sync:connect("${url}"), ` +
      `L = fun Loop(K) -> {ok, _} = pg_sync:select(P, "select pg_sleep(0.001), " ++ integer_to_list(K)), ` +
      `{ts_echo, '${full}'} ! {self(), K}, receive {echo, _} -> ok after 1000 -> ok end, Loop(K + 1) end, L(0) end)`,
  )
  await eventually(() => fired.length === 8, 'eight erl processes announced')
  await eventually(async () => (await backends(pgUrl, app)) === 8, 'eight pg sessions open')
  await sleep(500)
  await erl.kill()
  await eventually(() => fired.every((r) => r.exit !== undefined && r.down !== undefined), 'every link and monitor to fire')
  for (const r of fired) {
    assert.is(r.exit, atom('noconnection'), `link to ${r.pid}`)
    assert.is(r.down, atom('noconnection'), `monitor of ${r.pid}`)
  }
  await eventually(async () => (await backends(pgUrl, app)) === 0, 'the sessions owned by the dead processes to close')
  assert.equal(node.nodes(), [])
  assertNoCrash()
})

/** The PostgreSQL version whose pg_ctlcluster we drive (the highest under /etc/postgresql). */
function pgVersion(): string | undefined {
  if (!existsSync('/etc/postgresql')) return undefined
  return readdirSync('/etc/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))[0]
}

function restartSkipReason(): string | undefined {
  const env = process.env.TS_CNODE_TEST_PGURL
  if (env && !['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(env).hostname))
    return `TS_CNODE_TEST_PGURL points at ${new URL(env).host}: PostgreSQL is not on this host, so it cannot be restarted here`
  if (process.getuid?.() !== 0) return 'not root: pg_createcluster / pg_ctlcluster need root'
  for (const t of ['pg_createcluster', 'pg_ctlcluster', 'pg_dropcluster'])
    if (!['/usr/bin', '/usr/sbin'].some((d) => existsSync(`${d}/${t}`))) return `${t} is missing (package postgresql-common)`
  if (!pgVersion()) return 'no PostgreSQL cluster configuration under /etc/postgresql'
  return undefined
}

test('PostgreSQL restarted under load: selects answer {error, ...}, later connects succeed, the node never crashes', async () => {
  const skip = restartSkipReason()
  if (skip) {
    process.stdout.write(`\n  SKIPPED PostgreSQL restart: ${skip}\n`)
    return
  }
  // A private throwaway cluster, restarted with pg_ctlcluster as the main one would be, so that other suites
  // using the shared server are not cut off.
  const version = pgVersion()!
  const cluster = `tscnode${process.pid}`
  const port = await freePort()
  await execFileP('pg_createcluster', [version, cluster, '-p', String(port), '--start', '--', '--auth-host=trust', '--auth-local=trust'])
  const drop = () => {
    try {
      execFileSync('pg_dropcluster', [version, cluster, '--stop'], { stdio: 'ignore' })
    } catch {
      // already gone
    }
  }
  process.once('exit', drop)
  try {
    const base = `postgres://postgres@127.0.0.1:${port}/postgres`
    await eventually(async () => (await backends(base, 'none')) === 0, 'the private cluster to accept connections', 20_000)
    const { full } = await tsNode({}, true)
    const erl = await erlNode(uname('pgload'), full)
    const app = `ts_cnode_restart_${process.pid}`
    const url = withApp(base, app)
    await erl.eval(`persistent_term:put(pgload, ts_peer:pg_load("${url}", 6, "select pg_sleep(0.002), 1"))`)
    await eventually(async () => (await backends(base, app)) === 6, 'six sessions under load')
    await sleep(300)
    await execFileP('pg_ctlcluster', ['--skip-systemctl-redirect', version, cluster, 'restart'])
    // After the restart the workers reconnect and carry on.
    await eventually(async () => (await backends(base, app)) === 6, 'six sessions again after the restart', 30_000)
    await sleep(300)
    const printed = await erl.eval(`ts_peer:pg_load_report(persistent_term:get(pgload))`, 60_000)
    const reports = [...printed.matchAll(/#\{([^}]*)\}/g)].map((m) => m[1])
    assert.is(reports.length, 6, printed)
    const num = (r: string, k: string) => Number(new RegExp(`\\b${k} => (\\d+)`).exec(r)?.[1])
    const sum = (k: string) => reports.reduce((a, r) => a + num(r, k), 0)
    assert.ok(sum('error') >= 6, `every session saw its server go: ${printed}`)
    assert.ok(sum('connects') >= 12, `every worker connected again: ${printed}`)
    assert.ok(sum('ok_after_error') >= 6, `selects succeed after the restart: ${printed}`)
    // The errors are the seed's {error, Msg}: a string (a charlist) of the server's or the driver's text.
    assert.match(printed, /errors => \["/)
    await eventually(async () => (await backends(base, app)) === 0, 'every session closed after the workers disconnected')
    await erl.stop()
    assertNoCrash()
  } finally {
    drop()
    process.off('exit', drop)
  }
})

test('EPMD killed and restarted: the node registers again and a new peer finds it', async () => {
  const { node, full } = await tsNode()
  const alive = full.split('@')[0]
  const old = await erlNode(uname('old'))
  assert.is(await old.eval(`net_adm:ping('${full}')`), 'pong')
  await epmd.restart()
  await eventually(async () => (await epmd.names()).includes(`name ${alive} at port`), 'the node to register with the new EPMD', 15_000)
  const fresh = await erlNode(uname('new'))
  assert.is(await fresh.eval(`net_adm:ping('${full}')`), 'pong')
  assert.is(await old.eval(`net_adm:ping('${full}')`), 'pong')
  assert.equal(node.nodes().map(String).sort(), [`${old.nodeName}`, `${fresh.nodeName}`].sort())
  await old.stop()
  await fresh.stop()
  assertNoCrash()
})

/** A TS process that sends `count` messages {seq, I, Payload} to {Name, Node}; pacing with whenWritable. */
function sender(node: Node, to: { name: string; node: string }, count: number, size: number, pace: boolean, link?: Pid) {
  const state = { sent: 0, maxPending: 0, exit: undefined as Term | undefined, done: false }
  const proc = node.spawn(async (self) => {
    self.trapExit = true
    if (link) self.link(link)
    for (let i = 1; i <= count; i++) {
      self.send(to, tuple(atom('seq'), i, Buffer.alloc(size, i & 0xff)))
      state.sent = i
      state.maxPending = Math.max(state.maxPending, node.connection(to.node)?.pendingBytes ?? 0)
      if (pace) await node.whenWritable(to.node)
      else if (i % 64 === 0) await new Promise((r) => setImmediate(r))
    }
    state.done = true
    const m = await self.receive((x) => x instanceof Tuple && x.get(0) === atom('EXIT'), { timeout: link ? 30_000 : 0 }).catch(() => undefined)
    if (m) state.exit = (m as Tuple).get(2)
  })
  return { proc, state }
}

test('slow consumers: a slow erl reader, and an erl that stops reading (SIGSTOP): memory bounded, nothing lost or reordered once it resumes', async () => {
  const HWM = 256 * 1024
  const LIMIT = 32 * 1024 * 1024
  const { node, logs } = await tsNode({ highWaterMark: HWM, maxQueueSize: LIMIT })
  const erlName = uname('slow')
  const erl = await erlNode(erlName)
  const peer = `${erlName}@${shortHost}`
  const result = async (box: string, n: number) => erl.eval(`ts_peer:slow_reader_wait(whereis(${box}), ${n}, 60000)`, 120_000)

  // 1. An erl process that takes 1 ms per message: erl still reads its socket, so nothing piles up here.
  await erl.eval(`ts_peer:slow_reader(box1, 1)`)
  const a = sender(node, { name: 'box1', node: peer }, 2000, 100, false)
  await eventually(() => a.state.done, 'the sender to finish')
  assert.ok(a.state.maxPending < HWM + 64 * 1024, `queued ${a.state.maxPending} bytes for a slow reader`)
  assert.is(await result('box1', 2000), '{2000,true}')

  // 2. erl stopped: 12 MiB without waiting (past what the kernel buffers, within the 32 MiB limit) queue up
  //    here; once erl resumes, all of it arrives, in order.
  await erl.eval(`ts_peer:slow_reader(box2, 0)`)
  erl.signal('SIGSTOP')
  const b = sender(node, { name: 'box2', node: peer }, 768, 16 * 1024, false)
  await eventually(() => b.state.done, 'the sender to finish')
  assert.ok(b.state.maxPending > 0 && b.state.maxPending <= LIMIT, `queued ${b.state.maxPending}`)
  erl.signal('SIGCONT')
  assert.is(await result('box2', 768), '{768,true}')

  // 3. erl stopped, a sender that waits for whenWritable: it is held at the high-water mark (memory stays
  //    bounded however much it has to send) and goes on when erl resumes; all of it arrives, in order.
  await erl.eval(`ts_peer:slow_reader(box3, 0)`)
  erl.signal('SIGSTOP')
  const c = sender(node, { name: 'box3', node: peer }, 4096, 16 * 1024, true)
  await sleep(1500)
  const held = c.state.sent
  assert.ok(held < 4096, 'the paced sender was not held back')
  assert.ok(c.state.maxPending < HWM + 16 * 1024 + 64, `paced sender queued ${c.state.maxPending}`)
  erl.signal('SIGCONT')
  await eventually(() => c.state.done, 'the paced sender to finish after SIGCONT', 60_000)
  assert.is(await result('box3', 4096), '{4096,true}')
  await erl.stop()
  assertNoCrash()
})

test('at maxQueueSize toward a stopped peer the connection is closed, logged, and links fire noconnection (regression: WriteQueueFullError escaped from send() and crashed the sender)', async () => {
  const LIMIT = 32 * 1024 * 1024
  const { node, logs } = await tsNode({ highWaterMark: 256 * 1024, maxQueueSize: LIMIT })
  const erlName = uname('stopped')
  const erl = await erlNode(erlName)
  const peer = `${erlName}@${shortHost}`
  assert.is(await node.ping(peer), 'pong')
  // erl stopped, a sender that does not wait and sends 96 MiB: at maxQueueSize the connection is closed
  // (logged), the queue never grows past the limit, and the sender's link to an erl process fires with
  // noconnection. Resumed, erl reconnects as to any node that went down.
  const victim = await erl.evalBinary(`spawn(fun() -> receive stop -> ok end end)`)
  const victimPid = binaryToTerm(victim) as Pid
  erl.signal('SIGSTOP')
  const d = sender(node, { name: 'box4', node: peer }, 1536, 64 * 1024, false, victimPid)
  await eventually(() => d.state.done && d.state.exit !== undefined, 'the unpaced sender to finish and get its EXIT', 60_000)
  assert.is(d.state.exit, atom('noconnection'))
  assert.ok(d.state.maxPending <= LIMIT + 64 * 1024 + 256, `queued ${d.state.maxPending} past the limit ${LIMIT}`)
  assert.ok(logs.lines.some((l) => /^warn: closing connection to .*: write queue to .* above its limit/.test(l)), logs.lines.join('\n'))
  erl.signal('SIGCONT')
  assert.is(await erl.eval(`net_adm:ping('${node.name.name}')`), 'pong')
  await erl.stop()
  assertNoCrash()
})

test.run()
