// Fault injections around a node running in this process, shared by integration/faults.test.ts (once each)
// and scripts/soak.ts (in rounds). Each one injects its fault and returns what it observed; the caller
// asserts. Real erl peers (the shipped modules and ts_peer.erl loaded), a real EPMD, a real PostgreSQL.
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { promisify } from 'node:util'
import pg from 'pg'
import { compileShippedModules, Epmd, ErlNode, eventually, freePort, pgUrl, sleep } from './harness.js'
import { peerBeamDir } from './fuzz/scenario.js'
import { Node, type NodeOptions } from '../src/node.js'
import { startDrivers, type Drivers } from '../src/drivers/driver.js'
import { atom, Pid, Ref, Tuple, tuple, type Term } from '../src/etf/terms.js'
import type { Logger } from '../src/logger.js'

const execFileP = promisify(execFile)

export interface Recorder extends Logger {
  lines: string[]
}

export function recorder(): Recorder {
  const lines: string[] = []
  const rec = (level: string) => (m: string) => {
    lines.push(`${level}: ${m}`)
    if (lines.length > 20_000) lines.splice(0, 10_000)
  }
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

export class FaultEnv {
  readonly nodes: Node[] = []
  readonly drivers: Drivers[] = []
  private uniq = 0

  private constructor(
    readonly epmd: Epmd,
    readonly shipped: string,
    readonly peerBeams: string,
    readonly cookie: string,
  ) {}

  static async start(cookie = 'ts_cnode_faults_cookie'): Promise<FaultEnv> {
    return new FaultEnv(await Epmd.start(), await compileShippedModules(), await peerBeamDir(), cookie)
  }

  uname(base: string): string {
    return `${base}${process.pid % 10000}x${this.uniq++}`
  }

  /** A node with a trap-exit echo process `ts_echo` (and the 16 drivers when asked). */
  async tsNode(opts: Partial<NodeOptions> = {}, withDrivers = false): Promise<{ node: Node; logs: Recorder; full: string }> {
    const logs = recorder()
    const node = new Node({ name: this.uname('tsf'), cookie: this.cookie, epmdPort: this.epmd.port, logger: logs, ...opts })
    await node.start()
    this.nodes.push(node)
    if (withDrivers) this.drivers.push(await startDrivers(node, { count: 16 }))
    node.spawn(
      async (self) => {
        self.trapExit = true
        for await (const m of self.mailbox) if (m instanceof Tuple && m.get(0) instanceof Pid) self.send(m.get(0) as Pid, tuple(atom('echo'), m))
      },
      { name: 'ts_echo' },
    )
    return { node, logs, full: node.name.name }
  }

  erlNode(name: string, tsFull?: string): Promise<ErlNode> {
    return ErlNode.start({
      name,
      cookie: this.cookie,
      epmdPort: this.epmd.port,
      codePath: [this.shipped, this.peerBeams],
      env: tsFull ? { TS_CNODE_NODE: tsFull } : {},
    })
  }

  async stopNode(node: Node): Promise<void> {
    const i = this.nodes.indexOf(node)
    if (i >= 0) this.nodes.splice(i, 1)
    await node.stop()
  }

  async close(): Promise<void> {
    for (const d of this.drivers.splice(0)) await d.stop()
    await Promise.all(this.nodes.splice(0).map((n) => n.stop()))
  }
}

export async function backends(url: string, app: string): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [app])).rows[0].n as number
  } finally {
    await c.end()
  }
}

export const withApp = (url: string, app: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${app}`

// --- a peer killed with SIGKILL mid-traffic ------------------------------------------------------------

export interface KillObservation {
  /** For each erl process: the reason its TS link (trap_exit) and its TS monitor fired with. */
  fired: Array<{ pid: Pid; exit?: Term; down?: Term }>
  backendsBefore: number
  backendsAfter: number
  nodesAfter: string[]
}

/**
 * `workers` erl processes, each with a pg_sync session, select and exchange messages with the node
 * non-stop; a TS process links to (trapping exits) and monitors each. Then erl is killed with SIGKILL.
 */
export async function killPeerMidTraffic(env: FaultEnv, node: Node, workers = 8): Promise<KillObservation> {
  const full = node.name.name
  const app = `ts_cnode_kill_${process.pid}_${env.uname('a')}`
  const watchName = env.uname('fault_watch')
  const fired: KillObservation['fired'] = []
  const watcher = node.spawn(
    async (self) => {
      for await (const m of self.mailbox) {
        if (!(m instanceof Tuple) || m.get(0) !== atom('watch') || !(m.get(1) instanceof Pid)) continue
        const pid = m.get(1) as Pid
        const rec: KillObservation['fired'][number] = { pid }
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
    { name: watchName },
  )
  const erl = await env.erlNode(env.uname('victim'), full)
  try {
    const url = withApp(pgUrl, app)
    await erl.eval(
      `ts_peer:workers(${workers}, {${watchName}, '${full}'}, fun() -> {ok, P} = pg_sync:connect("${url}"), ` +
        `L = fun Loop(K) -> {ok, _} = pg_sync:select(P, "select pg_sleep(0.001), " ++ integer_to_list(K)), ` +
        `{ts_echo, '${full}'} ! {self(), K}, receive {echo, _} -> ok after 1000 -> ok end, Loop(K + 1) end, L(0) end)`,
    )
    await eventually(() => fired.length === workers, `${workers} erl processes announced`)
    const backendsBefore = await eventually(async () => {
      const n = await backends(pgUrl, app)
      return n === workers && n
    }, `${workers} pg sessions open`)
    await sleep(300)
    await erl.kill()
    await eventually(() => fired.every((r) => r.exit !== undefined && r.down !== undefined), 'every link and monitor to fire')
    await eventually(async () => (await backends(pgUrl, app)) === 0, 'the sessions owned by the dead processes to close').catch(() => undefined)
    return { fired, backendsBefore: backendsBefore as number, backendsAfter: await backends(pgUrl, app), nodesAfter: node.nodes().map(String) }
  } finally {
    node.runtime.exit(watcher.pid, atom('kill'))
    await erl.kill()
  }
}

// --- PostgreSQL restarted under load -------------------------------------------------------------------

/** The PostgreSQL version whose pg_ctlcluster we drive (the highest under /etc/postgresql). */
export function pgVersion(): string | undefined {
  if (!existsSync('/etc/postgresql')) return undefined
  return readdirSync('/etc/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))[0]
}

/** Why the PostgreSQL restart cannot run here, or undefined when it can. */
export function pgRestartSkipReason(): string | undefined {
  const env = process.env.TS_CNODE_TEST_PGURL
  if (env && !['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(env).hostname))
    return `TS_CNODE_TEST_PGURL points at ${new URL(env).host}: PostgreSQL is not on this host, so it cannot be restarted here`
  if (process.getuid?.() !== 0) return 'not root: pg_createcluster / pg_ctlcluster need root'
  for (const t of ['pg_createcluster', 'pg_ctlcluster', 'pg_dropcluster'])
    if (!['/usr/bin', '/usr/sbin'].some((d) => existsSync(`${d}/${t}`))) return `${t} is missing (package postgresql-common)`
  if (!pgVersion()) return 'no PostgreSQL cluster configuration under /etc/postgresql'
  return undefined
}

/**
 * A private throwaway cluster (pg_createcluster, trust auth, a free port), restarted with
 * `pg_ctlcluster --skip-systemctl-redirect V NAME restart` as the main one would be, so that other suites
 * using the shared server are not cut off. drop() removes it (also run on process exit).
 */
export interface PrivateCluster {
  url: string
  restart(): Promise<void>
  drop(): void
}

export async function privateCluster(): Promise<PrivateCluster> {
  const version = pgVersion()!
  const name = `tscnode${process.pid}`
  const port = await freePort()
  await execFileP('pg_createcluster', [version, name, '-p', String(port), '--start', '--', '--auth-host=trust', '--auth-local=trust'])
  let dropped = false
  const drop = () => {
    if (dropped) return
    dropped = true
    process.off('exit', drop)
    try {
      execFileSync('pg_dropcluster', [version, name, '--stop'], { stdio: 'ignore' })
    } catch {
      // already gone
    }
  }
  process.once('exit', drop)
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  await eventually(async () => (await backends(url, 'none')) === 0, 'the private cluster to accept connections', 20_000)
  return {
    url,
    async restart() {
      await execFileP('pg_ctlcluster', ['--skip-systemctl-redirect', version, name, 'restart'])
    },
    drop,
  }
}

export interface PgRestartObservation {
  printed: string
  workers: number
  /** Sums over the workers. */
  ok: number
  error: number
  connects: number
  okAfterError: number
  backendsAfter: number
}

/** `workers` erl processes select in a loop through pg_sync sessions while the cluster restarts. */
export async function restartPgUnderLoad(env: FaultEnv, node: Node, cluster: PrivateCluster, workers = 6): Promise<PgRestartObservation> {
  const app = `ts_cnode_restart_${process.pid}_${env.uname('r')}`
  const url = withApp(cluster.url, app)
  const erl = await env.erlNode(env.uname('pgload'), node.name.name)
  try {
    await erl.eval(`persistent_term:put(pgload, ts_peer:pg_load("${url}", ${workers}, "select pg_sleep(0.002), 1"))`)
    await eventually(async () => (await backends(cluster.url, app)) === workers, `${workers} sessions under load`)
    await sleep(300)
    await cluster.restart()
    await eventually(async () => (await backends(cluster.url, app)) === workers, `${workers} sessions again after the restart`, 30_000)
    await sleep(300)
    const printed = await erl.eval(`ts_peer:pg_load_report(persistent_term:get(pgload))`, 60_000)
    const reports = [...printed.matchAll(/#\{([^}]*)\}/g)].map((m) => m[1])
    const sum = (k: string) => reports.reduce((a, r) => a + Number(new RegExp(`\\b${k} => (\\d+)`).exec(r)?.[1] ?? 0), 0)
    await eventually(async () => (await backends(cluster.url, app)) === 0, 'every session closed after the workers disconnected').catch(() => undefined)
    return {
      printed,
      workers: reports.length,
      ok: sum('ok'),
      error: sum('error'),
      connects: sum('connects'),
      okAfterError: sum('ok_after_error'),
      backendsAfter: await backends(cluster.url, app),
    }
  } finally {
    await erl.stop()
  }
}

// --- EPMD killed and restarted ---------------------------------------------------------------------------

export interface EpmdRestartObservation {
  reregistered: boolean
  oldPeerPing: string
  newPeerPing: string
  nodes: string[]
  expectedNodes: string[]
}

export async function restartEpmd(env: FaultEnv, node: Node): Promise<EpmdRestartObservation> {
  const full = node.name.name
  const alive = full.split('@')[0]
  const old = await env.erlNode(env.uname('old'))
  try {
    await old.eval(`net_adm:ping('${full}')`)
    await env.epmd.restart()
    const reregistered = await eventually(async () => (await env.epmd.names()).includes(`name ${alive} at port`), 'the node to register with the new EPMD', 15_000)
      .then(() => true)
      .catch(() => false)
    const fresh = await env.erlNode(env.uname('new'))
    try {
      const newPeerPing = await fresh.eval(`net_adm:ping('${full}')`)
      const oldPeerPing = await old.eval(`net_adm:ping('${full}')`)
      return {
        reregistered,
        oldPeerPing,
        newPeerPing,
        nodes: node.nodes().map(String).sort(),
        expectedNodes: [old.nodeName, fresh.nodeName].sort(),
      }
    } finally {
      await fresh.stop()
    }
  } finally {
    await old.stop()
  }
}

// --- slow consumers --------------------------------------------------------------------------------------

/** A TS process that sends `count` messages {seq, I, Payload} to {Name, Node}; pacing with whenWritable. */
export function sender(node: Node, to: { name: string; node: string }, count: number, size: number, pace: boolean, link?: Pid) {
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

export interface StopObservation {
  /** What the erl reader counted, as erl prints it: {Count,InOrder}. */
  result: string
  maxPending: number
  sent: number
}

/** erl stopped (SIGSTOP) while a TS process sends count x size bytes to it without waiting; then SIGCONT. */
export async function sendToStoppedPeer(env: FaultEnv, node: Node, erl: ErlNode, count: number, size: number): Promise<StopObservation> {
  const box = env.uname('box')
  await erl.eval(`ts_peer:slow_reader(${box}, 0)`)
  // Connected first: the bytes then queue on the connection (a node still in its handshake holds signals
  // instead, up to maxPendingSignals).
  await node.ping(erl.nodeName)
  erl.signal('SIGSTOP')
  const s = sender(node, { name: box, node: erl.nodeName }, count, size, false).state
  try {
    await eventually(() => s.done, 'the sender to finish', 60_000)
  } finally {
    erl.signal('SIGCONT')
  }
  const result = await erl.eval(`ts_peer:slow_reader_wait(whereis(${box}), ${count}, 60000)`, 120_000)
  return { result, maxPending: s.maxPending, sent: s.sent }
}

