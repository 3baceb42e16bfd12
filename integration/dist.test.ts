// The distribution layer against real `erl` nodes on a private EPMD: ping both ways with -sname / -name,
// hidden and visible; wrong cookies; large, deep and many messages each way; tick timeout; EPMD restart.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { once } from 'node:events'
import { cleanup, Epmd, ErlNode, eventually, freePort, shortHost, sleep } from './harness.js'
import { DistManager, type DistManagerOptions } from '../src/dist/manager.js'
import type { Connection } from '../src/dist/connection.js'
import { NodeUnreachableError } from '../src/dist/errors.js'
import { atom, isTuple, Pid, termEquals, Tuple, type Term } from '../src/etf/terms.js'
import type { Logger } from '../src/logger.js'

const COOKIE = 'ts_cnode_test_cookie'
let epmd: Epmd
const managers: DistManager[] = []
let uniq = 0
const name = (base: string) => `${base}${process.pid % 10000}x${uniq++}`

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = []
  const rec = (level: string) => (m: string) => void lines.push(`${level}: ${m}`)
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

async function tsNode(opts: Partial<DistManagerOptions> = {}) {
  const logs = recorder()
  const m = new DistManager({ name: name('ts'), cookie: COOKIE, epmdPort: epmd.port, logger: logs, ...opts })
  await m.start()
  managers.push(m)
  return { m, logs }
}

/** Messages sent to `pid` (SEND / SEND_SENDER), in arrival order. */
class Inbox {
  private msgs: Term[] = []
  private wake: (() => void) | undefined
  constructor(m: DistManager, readonly pid: Pid) {
    m.on('control', (c) => {
      if ((c.kind === 'SEND' || c.kind === 'SEND_SENDER') && termEquals(c.to, pid)) {
        this.msgs.push(c.message)
        this.wake?.()
      }
    })
  }
  get count(): number {
    return this.msgs.length
  }
  take(): Term[] {
    return this.msgs.splice(0)
  }
  async next(timeoutMs = 30_000): Promise<Term> {
    const deadline = Date.now() + timeoutMs
    while (this.msgs.length === 0) {
      if (Date.now() > deadline) throw new Error(`no message for ${this.pid} within ${timeoutMs} ms`)
      await new Promise<void>((r) => {
        this.wake = r
        setTimeout(r, 100)
      })
    }
    return this.msgs.shift()!
  }
}

async function send(conn: Connection, from: Pid, toName: string, message: Term): Promise<void> {
  if (!conn.send({ kind: 'REG_SEND', from, toName: atom(toName), message })) await conn.whenWritable()
}

test.before(async () => {
  epmd = await Epmd.start()
})

test.after(async () => {
  await Promise.all(managers.map((m) => m.stop()))
  await cleanup()
})

for (const variant of [
  { long: false, hidden: false },
  { long: false, hidden: true },
  { long: true, hidden: false },
  { long: true, hidden: true },
]) {
  const label = `${variant.long ? '-name' : '-sname'}${variant.hidden ? ' -hidden' : ''}`
  test(`${label}: the TS node pings erl (pong, nodes(hidden) lists it), then erl pings the TS node (pong)`, async () => {
    const host = variant.long ? '127.0.0.1' : shortHost
    const { m } = await tsNode(variant.long ? { name: `${name('tsl')}@127.0.0.1`, longNames: true } : {})
    const erlName = name('e')
    const erl = await ErlNode.start({
      name: variant.long ? `${erlName}@127.0.0.1` : erlName,
      longNames: variant.long,
      hidden: variant.hidden,
      epmdPort: epmd.port,
    })
    const peer = `${erlName}@${host}`
    assert.is(await m.ping(peer), 'pong')
    const ts = m.nodeName.name
    assert.is(await erl.eval(`lists:member('${ts}', nodes(hidden))`), 'true')
    assert.is(await erl.eval(`lists:member('${ts}', nodes())`), 'false')
    const down = once(m, 'nodedown')
    assert.is(await erl.eval(`erlang:disconnect_node('${ts}')`), 'true')
    await down
    assert.is(await erl.eval(`net_adm:ping('${ts}')`), 'pong')
    assert.is(await erl.eval(`lists:member('${ts}', nodes(hidden))`), 'true')
    assert.equal(m.nodes().map(String), [peer])
    await erl.stop()
  })
}

test('short and long names do not mix: a node connects only to nodes of its own kind, as erl refuses the other', async () => {
  const { m: short } = await tsNode()
  const { m: long } = await tsNode({ name: `${name('tsl')}@127.0.0.1`, longNames: true })
  const le = name('le')
  const se = name('se')
  const longErl = await ErlNode.start({ name: `${le}@127.0.0.1`, longNames: true, epmdPort: epmd.port })
  const shortErl = await ErlNode.start({ name: se, epmdPort: epmd.port })
  const refused = async (m: DistManager, peer: string, why: RegExp) => {
    const e = await m.connect(peer).then(
      () => undefined,
      (x: unknown) => x,
    )
    assert.instance(e, NodeUnreachableError, `${m.nodeName.name} -> ${peer}`)
    assert.match((e as Error).message, why)
    assert.is(await m.ping(peer), 'pang')
  }
  await refused(short, `${le}@127.0.0.1`, /uses short names .* 127\.0\.0\.1 is a fully qualified host name or an address/)
  await refused(long, `${se}@${shortHost}`, /uses long names .* is not a fully qualified host name/)
  // Each kind still reaches its own.
  assert.is(await short.ping(`${se}@${shortHost}`), 'pong')
  assert.is(await long.ping(`${le}@127.0.0.1`), 'pong')
  // As in erl, erl refuses the other kind too (the reference this follows).
  assert.is(await shortErl.eval(`net_adm:ping('${le}@127.0.0.1')`), 'pang')
  await longErl.stop()
  await shortErl.stop()
})

test('a node started with a dynamic name (-sname undefined) is named by the TS node (NAME_ME)', async () => {
  const { m } = await tsNode()
  const erl = await ErlNode.start({ name: 'undefined', hidden: true, epmdPort: epmd.port })
  assert.is(await erl.eval(`net_kernel:connect_node('${m.nodeName.name}')`), 'true')
  const named = await erl.eval('node()')
  assert.match(named, new RegExp(`^'?c[0-9a-f]+\\d*@${shortHost}'?$`))
  assert.equal(m.nodes().map(String), [named.replace(/'/g, '')])
  await erl.stop()
})

test('wrong cookie in each direction is refused while a good peer keeps being served', async () => {
  const { m, logs } = await tsNode()
  const ts = m.nodeName.name
  const goodName = name('good')
  const good = await ErlNode.start({ name: goodName, epmdPort: epmd.port })
  const badName = name('bad')
  const bad = await ErlNode.start({ name: badName, epmdPort: epmd.port, cookie: 'not_the_cookie' })
  assert.is(await good.eval(`net_adm:ping('${ts}')`), 'pong')
  const goodConn = m.connection(`${goodName}@${shortHost}`)!
  // The good peer exchanges messages all along.
  const me = m.makePid()
  const inbox = new Inbox(m, me)
  await good.eval(`register(echo, spawn(fun Loop() -> receive {P, X} -> P ! X, Loop() end end)), ok`)
  let stop = false
  const traffic = (async () => {
    let n = 0
    while (!stop) {
      await send(goodConn, me, 'echo', new Tuple([me, n]))
      assert.is(await inbox.next(), n)
      n++
    }
    return n
  })()
  // One direction after the other: attempts made at the same moment meet as a simultaneous connect, which
  // one side gives up before any cookie is checked (so that direction logs no cookie warning).
  assert.is(await bad.eval(`net_adm:ping('${ts}')`), 'pang')
  assert.is(await m.ping(`${badName}@${shortHost}`), 'pang')
  stop = true
  assert.ok((await traffic) > 0)
  assert.not.ok(goodConn.closed)
  assert.is(await good.eval(`net_adm:ping('${ts}')`), 'pong')
  // Each direction is a warning (shown by default), naming the peer and the cookie.
  for (const what of ['connection attempt from', 'connection to'])
    assert.ok(
      logs.lines.some((l) => l.startsWith(`warn: ${what} ${badName}@${shortHost}`) && /cookie/.test(l)),
      logs.lines.join('\n'),
    )
  assert.equal(m.nodes().map(String), [`${goodName}@${shortHost}`])
  await good.stop()
  await bad.stop()
})

const FIVE_MB = 5 * 1024 * 1024
const PATTERN_EXPR = `binary:part(binary:copy(list_to_binary(lists:seq(0, 250)), ${Math.ceil(FIVE_MB / 251)}), 0, ${FIVE_MB})`
// Each level is a tuple holding a list: 90,000 nested containers (as deep as iodata appended to 90,000 times),
// inside the decoder's default maxDepth (100,000).
const DEPTH = 45_000
const DEEP_EXPR = `lists:foldl(fun(I, Acc) -> {I, <<"padpadpad">>, [Acc]} end, [], lists:seq(1, ${DEPTH}))`

function pattern(): Buffer {
  const b = Buffer.allocUnsafe(FIVE_MB)
  for (let i = 0; i < b.length; i++) b[i] = i % 251
  return b
}

function deep(): Term {
  let t: Term = []
  for (let i = 1; i <= DEPTH; i++) t = new Tuple([i, Buffer.from('padpadpad'), [t]])
  return t
}

/** Walks the deep term level by level (a recursive comparison would exhaust the JS stack). */
function isDeep(t: Term): boolean {
  for (let i = DEPTH; i >= 1; i--) {
    if (!isTuple(t, 3) || t.get(0) !== i || !termEquals(t.get(1), Buffer.from('padpadpad'))) return false
    const l = t.get(2)
    if (!Array.isArray(l) || l.length !== 1) return false
    t = l[0]
  }
  return Array.isArray(t) && t.length === 0
}

/** A 5 MB binary and a deep term from Erlang and back, checked on both sides; the connection used. */
async function bigEachWay(opts: Partial<DistManagerOptions>): Promise<Connection> {
  const { m } = await tsNode(opts)
  const erlName = name('big')
  const erl = await ErlNode.start({ name: erlName, epmdPort: epmd.port })
  const conn = await m.connect(`${erlName}@${shortHost}`)
  const me = m.makePid()
  const inbox = new Inbox(m, me)
  await erl.eval(
    `register(bigsrv, spawn(fun Loop() -> receive
        {send, P} -> P ! {big, ${PATTERN_EXPR}, ${DEEP_EXPR}}, Loop();
        {check, P, Bin, Deep} -> P ! {checked, Bin =:= ${PATTERN_EXPR}, Deep =:= ${DEEP_EXPR}, byte_size(Bin)}, Loop()
      end end)), ok`,
  )
  // Erlang → TS
  await send(conn, me, 'bigsrv', new Tuple([atom('send'), me]))
  const got = await inbox.next(60_000)
  assert.ok(isTuple(got, 3) && got.get(0) === atom('big'))
  const bin = (got as Tuple).get(1)
  assert.ok(Buffer.isBuffer(bin) && bin.length === FIVE_MB)
  assert.ok((bin as Buffer).equals(pattern()), '5 MB binary from Erlang is intact')
  assert.ok(isDeep((got as Tuple).get(2)), 'deep term from Erlang is intact')
  // TS → Erlang
  await send(conn, me, 'bigsrv', new Tuple([atom('check'), me, pattern(), deep()]))
  const checked = await inbox.next(60_000)
  assert.ok(termEquals(checked, new Tuple([atom('checked'), true, true, FIVE_MB])), String(checked))
  await erl.stop()
  return conn
}

test('a 5 MB binary and a deeply nested term arrive intact each way, in one frame (the default)', async () => {
  const conn = await bigEachWay({})
  assert.ok(conn.readsDirect, 'the TCP connection reads into its own buffers')
  assert.is(conn.stats.fragmentsIn, 0)
  assert.is(conn.stats.fragmentsOut, 0)
})

test('with fragments: true, the same arrive intact each way in fragments', async () => {
  const conn = await bigEachWay({ fragments: true })
  assert.ok(conn.stats.fragmentsIn > 80, `fragments from Erlang: ${conn.stats.fragmentsIn}`)
  assert.ok(conn.stats.fragmentsOut > 80, `fragments to Erlang: ${conn.stats.fragmentsOut}`)
})

test('a 100 MB binary from erl arrives (frames up to 256 MiB); a list of 2^24 + 1 []s closes that connection only, the node carries on', async () => {
  const { m, logs } = await tsNode()
  const erlName = name('huge')
  const erl = await ErlNode.start({ name: erlName, epmdPort: epmd.port })
  const conn = await m.connect(`${erlName}@${shortHost}`)
  const me = m.makePid()
  const inbox = new Inbox(m, me)
  await erl.eval(`register(hugesrv, spawn(fun L() -> receive
      {P, big} -> P ! binary:copy(<<7>>, 100 * 1024 * 1024), L();
      {P, nils} -> P ! lists:duplicate(16777217, []), L() end end)), ok`)
  await send(conn, me, 'hugesrv', new Tuple([me, atom('big')]))
  const big = (await inbox.next()) as Buffer
  assert.is(big.length, 100 * 1024 * 1024)
  assert.ok(big[0] === 7 && big[big.length - 1] === 7)
  // 16.8 MB on the wire, 2.6 GB in the JS heap at 64M of them: refused by the decoder's maxTerms.
  const down = once(m, 'nodedown')
  await send(conn, me, 'hugesrv', new Tuple([me, atom('nils')]))
  await down
  assert.ok(logs.lines.some((l) => /maxTerms/.test(l)), logs.lines.join('\n'))
  assert.is(await m.ping(`${erlName}@${shortHost}`), 'pong')
  await erl.stop()
})

test('binaries kept from many messages keep their bytes while more arrive (read buffers are reused)', async () => {
  for (const fragments of [false, true]) {
    const { m } = await tsNode({ fragments, fragmentSize: 4096 })
    const erlName = name('keep')
    const erl = await ErlNode.start({ name: erlName, epmdPort: epmd.port })
    const conn = await m.connect(`${erlName}@${shortHost}`)
    assert.ok(conn.readsDirect)
    const me = m.makePid()
    const inbox = new Inbox(m, me)
    // Binaries of 65..400 bytes (views of what was read) among small messages with none, and now and then
    // a 20 KB one (in fragments when they are on); each binary's bytes say which message it came in.
    const N = 3000
    await erl.eval(
      `register(keepsrv, spawn(fun() -> receive {go, P} ->
          lists:foreach(fun(I) ->
              Size = 65 + (I * 37) rem 336,
              P ! {bin, I, binary:copy(<<(I rem 251)>>, Size)},
              P ! {small, I},
              case I rem 100 of 0 -> P ! {bin, -I, binary:copy(<<(I rem 251)>>, 20000)}; _ -> ok end
            end, lists:seq(1, ${N}))
        end end)), ok`,
    )
    await send(conn, me, 'keepsrv', new Tuple([atom('go'), me]))
    await eventually(() => inbox.count >= 2 * N + N / 100, 'every message', 60_000)
    let bins = 0
    for (const msg of inbox.take()) {
      if (!isTuple(msg, 3)) continue
      const i = msg.get(1) as number
      const b = msg.get(2) as Buffer
      const size = i > 0 ? 65 + ((i * 37) % 336) : 20000
      assert.ok(b.length === size && b.every((x) => x === Math.abs(i) % 251), `binary of message ${i} (fragments: ${fragments}) changed`)
      bins++
    }
    assert.is(bins, N + N / 100)
    await erl.stop()
  }
})

test('a binary kept from a message holds in memory no other message\'s bytes (beyond 8 times its own size)', async () => {
  const { m } = await tsNode()
  const erlName = name('pin')
  const erl = await ErlNode.start({ name: erlName, epmdPort: epmd.port })
  const conn = await m.connect(`${erlName}@${shortHost}`)
  const me = m.makePid()
  const inbox = new Inbox(m, me)
  // 20,000 messages of a 104-byte binary, a few hundred to each read buffer; one binary in 100 is kept.
  const N = 20_000
  await erl.eval(
    `register(pinsrv, spawn(fun() -> receive {go, P} ->
        [P ! {bin, I, <<(binary:copy(<<(I rem 251)>>, 100))/binary, I:32>>} || I <- lists:seq(1, ${N})]
      end end)), ok`,
  )
  await send(conn, me, 'pinsrv', new Tuple([atom('go'), me]))
  await eventually(() => inbox.count >= N, 'every message', 60_000)
  const kept: Buffer[] = []
  for (const msg of inbox.take()) {
    const i = (msg as Tuple).get(1) as number
    const b = (msg as Tuple).get(2) as Buffer
    assert.is(b.readUInt32BE(100), i)
    if (i % 100 === 0) kept.push(b)
  }
  assert.is(kept.length, N / 100)
  const held = new Set(kept.map((b) => b.buffer))
  const heldBytes = [...held].reduce((n, ab) => n + ab.byteLength, 0)
  const keptBytes = kept.reduce((n, b) => n + b.length, 0)
  assert.ok(heldBytes <= 8 * keptBytes, `${kept.length} binaries of ${keptBytes} bytes in all hold ${heldBytes} bytes`)
  await erl.stop()
})

test('order is kept over 100,000 small messages from one sender, each way', async () => {
  const { m } = await tsNode()
  const erlName = name('ord')
  const erl = await ErlNode.start({ name: erlName, epmdPort: epmd.port })
  const conn = await m.connect(`${erlName}@${shortHost}`)
  const me = m.makePid()
  const inbox = new Inbox(m, me)
  const N = 100_000
  await erl.eval(
    `register(ordsrv, spawn(fun() -> receive {go, P} ->
        lists:foreach(fun(I) -> P ! {seq, I} end, lists:seq(1, ${N})),
        Check = fun C(I) when I > ${N} -> true; C(I) -> receive {seq, I} -> C(I + 1); {seq, _} -> false end end,
        P ! {order, Check(1)}
      end end)), ok`,
  )
  await send(conn, me, 'ordsrv', new Tuple([atom('go'), me]))
  await eventually(() => inbox.count >= N, 'all messages from Erlang', 60_000)
  const msgs = inbox.take()
  assert.is(msgs.length, N)
  assert.ok(msgs.every((x, i) => termEquals(x, new Tuple([atom('seq'), i + 1]))), 'Erlang → TS in order')
  for (let i = 1; i <= N; i++) await send(conn, me, 'ordsrv', new Tuple([atom('seq'), i]))
  const verdict = await inbox.next(60_000)
  assert.ok(termEquals(verdict, new Tuple([atom('order'), true])), 'TS → Erlang in order')
  await erl.stop()
})

test('a stopped peer (kill -STOP) is detected by the tick timeout', async () => {
  const ticktime = 4
  const { m, logs } = await tsNode({ netTicktime: ticktime })
  const erlName = name('stop')
  const erl = await ErlNode.start({ name: erlName, epmdPort: epmd.port, args: ['-kernel', 'net_ticktime', String(ticktime)] })
  const peer = `${erlName}@${shortHost}`
  assert.is(await m.ping(peer), 'pong')
  const down = once(m, 'nodedown')
  erl.signal('SIGSTOP')
  try {
    const [node, reason] = await Promise.race([
      down,
      sleep(ticktime * 1000 * 3).then(() => {
        throw new Error('no nodedown after three tick times')
      }),
    ])
    assert.is(String(node), peer)
    assert.is(reason, 'net_tick_timeout')
    assert.ok(logs.lines.some((l) => l.startsWith('info:') && l.includes(peer)))
  } finally {
    erl.signal('SIGCONT')
  }
  await erl.kill()
})

test('EPMD killed and restarted: the TS node registers again and is found by name', async () => {
  const own = await Epmd.start()
  const logs = recorder()
  const m = new DistManager({ name: name('tsr'), cookie: COOKIE, epmdPort: own.port, logger: logs })
  await m.start()
  managers.push(m)
  const creation = m.creation
  assert.match(await own.names(), new RegExp(`name ${m.alive} at port ${m.port}`))
  await own.restart()
  await eventually(async () => new RegExp(`name ${m.alive} at port ${m.port}`).test(await own.names()), 'registration after the EPMD restart', 15_000)
  assert.is(m.creation, creation)
  const erl = await ErlNode.start({ name: name('after'), epmdPort: own.port })
  assert.is(await erl.eval(`net_adm:ping('${m.nodeName.name}')`), 'pong')
  await erl.stop()
  await own.stop()
})

test('an embedded EPMD with no other node registered stops without a warning', async () => {
  const logs = recorder()
  const m = new DistManager({ name: name('tsq'), cookie: COOKIE, epmdPort: await freePort(), logger: logs })
  await m.start()
  assert.ok(m.embeddedEpmd)
  await m.stop()
  assert.not.ok(logs.lines.some((l) => l.startsWith('warn:')), logs.lines.join('\n'))
})

test('no EPMD on the port: the TS node serves an embedded one that real erl nodes use', async () => {
  const port = await freePort()
  const logs = recorder()
  const m = new DistManager({ name: name('tse'), cookie: COOKIE, epmdPort: port, logger: logs })
  await m.start()
  managers.push(m)
  assert.ok(m.embeddedEpmd, 'embedded EPMD started')
  const a = await ErlNode.start({ name: name('ea'), epmdPort: port })
  const b = await ErlNode.start({ name: name('eb'), epmdPort: port })
  assert.is(await a.eval(`net_adm:ping('${m.nodeName.name}')`), 'pong')
  assert.is(await m.ping(`${await b.eval('node()')}`), 'pong')
  assert.is(await a.eval(`net_adm:ping(${await b.eval('node()')})`), 'pong')
  // It ends with the node (unlike erl's daemon): that is said, naming the nodes it leaves unfindable.
  await m.stop()
  const warned = logs.lines.find((l) => l.startsWith('warn: stopping the embedded EPMD'))
  assert.ok(warned && warned.includes(a.nodeName.split('@')[0]) && warned.includes(b.nodeName.split('@')[0]), logs.lines.join('\n'))
  assert.not.ok(warned!.includes(m.nodeName.name.split('@')[0]), `its own name is not among them: ${warned}`)
  await a.stop()
  await b.stop()
})

test.run()
