// Hostile input against a node running in its own process (a crash is an exit we see), while a real erl
// peer keeps pinging it and exchanging messages with its echo process: setup timeouts, wrong and replayed
// challenge replies, frames over the maximum, ETF bombs, and a fuzz run (TS_CNODE_FUZZ_CASES, default
// 3,000) over EPMD, the handshake and the connected phase. The node must refuse each with a logged reason,
// close only the offending connection, keep its memory bounded, and never stop answering the peer.
// scripts/fuzz-dist.ts runs the long version (100,000+ cases).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as net from 'node:net'
import { cleanup, eventually, sleep } from './harness.js'
import {
  BOMBS,
  FuzzSession,
  openToChallenge,
  runFuzz,
  type FuzzReport,
} from './fuzz/dist-fuzz.js'
import { mib, startScene, type Scene } from './fuzz/scenario.js'
import { DistWriter } from '../src/dist/header.js'
import { encodeChallengeReply, encodeSendName, genChallenge, genDigest } from '../src/dist/handshake.js'
import { DEFAULT_FLAGS, DFLAG_FRAGMENTS, DFLAG_HANDSHAKE_23, hasFlag } from '../src/dist/flags.js'
import { atom, tuple } from '../src/etf/terms.js'

const MAX_FRAME = 8 * 1024 * 1024
const SETUP_TIME = 2000
let sc: Scene
let uniq = 0
const host = () => sc.target.name.split('@')[1]
const uname = (b: string) => `${b}${uniq++}@${host()}`

/** Log lines of the target about a peer (its name appears in the message or the node field). */
const about = (name: string) => sc.target.logs.filter((l) => l.node === name || l.msg.includes(name))

async function assertAlive(): Promise<void> {
  assert.ok(sc.target.alive, `the node died: ${sc.target.death}`)
  const s = await sc.chatterStats()
  assert.ok(s.ok > 0, `the erl peer got no answers: ${JSON.stringify(s)}`)
  assert.equal({ lost: s.lost, pang: s.pang, nodedown: s.nodedown }, { lost: 0, pang: 0, nodedown: 0 }, 'the erl peer lost answers or its connection')
}

test.before(async () => {
  sc = await startScene({ setupTime: SETUP_TIME, maxFrameSize: MAX_FRAME })
})

test.after(async () => {
  await sc?.close()
  await cleanup()
})

test('a handshake that never finishes is closed at the setup timeout, with the reason logged', async () => {
  const sockets: net.Socket[] = []
  const closed: Promise<void>[] = []
  const names: string[] = []
  for (let i = 0; i < 20; i++) {
    const s = net.connect(sc.fuzz.port, '127.0.0.1')
    s.on('error', () => {})
    // Read what the node says (status, challenge), or its close would wait behind the unread bytes.
    s.on('data', () => {})
    closed.push(new Promise((r) => s.once('close', () => r())))
    sockets.push(s)
    // Half of them stop after a valid send_name (mid-handshake), half send nothing at all.
    if (i % 2 === 0) {
      const name = uname('slow')
      names.push(name)
      const body = encodeSendName(DEFAULT_FLAGS | DFLAG_HANDSHAKE_23, 1, name)
      const len = Buffer.alloc(2)
      len.writeUInt16BE(body.length)
      s.write(Buffer.concat([len, body]))
    }
  }
  // The node closes every one of them itself (we never do).
  await Promise.race([Promise.all(closed), sleep(SETUP_TIME * 5).then(() => assert.unreachable('the node kept a silent connection open'))])
  await eventually(() => sc.target.logs.filter((l) => l.code === 'ERR_DIST_SETUP_TIMEOUT').length >= 20, 'a setup-timeout log line per connection')
  for (const n of names)
    assert.ok(about(n).some((l) => l.code === 'ERR_DIST_SETUP_TIMEOUT'), `no setup timeout logged for ${n}`)
  await assertAlive()
})

test('a wrong digest and a replayed challenge reply are refused (ERR_DIST_BAD_COOKIE), each logged', async () => {
  // First a real handshake, done by hand: our reply is right for its challenge and the node acks it.
  const first = uname('replay')
  const a = await openToChallenge(sc.fuzz, first)
  assert.ok(a && a.status === 'ok', 'the node did not challenge us')
  const reply = encodeChallengeReply(genChallenge(), genDigest(a!.challenge, sc.fuzz.cookie))
  a!.hs.send(reply)
  const ack = await a!.hs.recv()
  assert.is(ack?.[0], 0x61, 'no challenge_ack for the right reply')
  a!.hs.socket.destroy()

  // The same reply replayed on a new connection: the challenge is new, the digest is now wrong.
  const second = uname('replay')
  const b = await openToChallenge(sc.fuzz, second)
  b!.hs.send(reply)
  assert.ok(await b!.hs.waitClose(5000), 'the node kept a connection with a replayed reply')

  // A digest made with another cookie.
  const third = uname('wrong')
  const c = await openToChallenge(sc.fuzz, third)
  c!.hs.send(encodeChallengeReply(genChallenge(), genDigest(c!.challenge, 'not_the_cookie')))
  assert.ok(await c!.hs.waitClose(5000), 'the node kept a connection with a wrong digest')

  for (const n of [second, third])
    await eventually(() => about(n).some((l) => l.code === 'ERR_DIST_BAD_COOKIE'), `ERR_DIST_BAD_COOKIE logged for ${n}`)
  await assertAlive()
})

test('a frame over the configured maximum is refused when its length arrives; one at the maximum is taken', async () => {
  const s = await FuzzSession.open(sc.fuzz, uname('big'))
  assert.ok(s)
  assert.ok(hasFlag(s!.conn.flags, DFLAG_FRAGMENTS), 'fragments agreed (the fuzz sends fragmented messages)')
  // A message whose frame is exactly maxFrameSize bytes: accepted.
  const w = new DistWriter({ flags: s!.conn.flags, atomCache: false, fragmentSize: 1 << 30 })
  const frameOf = (n: number) => Buffer.concat(w.encode(tuple(6, s!.me, atom(''), atom('ts_sink')), Buffer.alloc(n, 7)))
  const overhead = frameOf(1000).length - 4 - 1000
  const atMax = frameOf(MAX_FRAME - overhead)
  assert.is(atMax.readUInt32BE(0), MAX_FRAME)
  s!.write([atMax])
  assert.is(await s!.probe(10_000), 'answered')
  // One byte more: the node refuses it on seeing the length, before any of the body is buffered.
  const peak0 = sc.target.rss().peak
  const over = frameOf(MAX_FRAME - overhead + 1)
  s!.write([over.subarray(0, 64)])
  assert.is(await s!.probe(10_000), 'closed')
  const name = s!.me.node.name
  await eventually(() => about(name).some((l) => /ERR_DIST_FRAME_TOO_LARGE/.test(String(l.reason))), 'ERR_DIST_FRAME_TOO_LARGE logged')
  assert.ok(sc.target.rss().peak - peak0 < MAX_FRAME, 'the node buffered the oversized frame')
  await assertAlive()
})

test('ETF bombs (huge declared lengths, deep nesting, COMPRESSED lying about its size): refused with a logged reason, memory bounded', async () => {
  const before = await sc.target.mem()
  const peak0 = sc.target.rss().peak
  for (const b of BOMBS) {
    const s = await FuzzSession.open(sc.fuzz, uname('bomb'))
    assert.ok(s, `no session for ${b.name}`)
    s!.write(b.frames(s!))
    const outcome = await s!.probe(20_000)
    assert.is(outcome, b.expect, b.name)
    const name = s!.me.node.name
    if (b.expect === 'closed')
      await eventually(() => about(name).some((l) => l.level === 'warn' && /^ERR_DIST_/.test(String(l.reason))), `a logged reason for: ${b.name}`)
    s!.close()
  }
  const after = await sc.target.mem()
  const peak = sc.target.rss().peak
  // The 256 MiB zlib bomb was never inflated past its declared 32 MiB, and nothing stayed behind.
  assert.ok(peak - peak0 < 200 * 1024 * 1024, `peak RSS grew by ${mib(peak - peak0)}`)
  const retained = (m: typeof before) => m.heapUsed + m.arrayBuffers
  assert.ok(
    retained(after) - retained(before) < 16 * 1024 * 1024,
    `retained memory grew: heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)}, buffers ${mib(before.arrayBuffers)} -> ${mib(after.arrayBuffers)}`,
  )
  await assertAlive()
})

test('fuzz: random and mutated bytes at EPMD, before, during and after the handshake; the node survives and keeps serving erl', async () => {
  const cases = Number(process.env.TS_CNODE_FUZZ_CASES ?? 3000)
  const seed = Number(process.env.TS_CNODE_FUZZ_SEED ?? 20261121)
  const before = await sc.target.mem()
  const report: FuzzReport = await runFuzz(sc.fuzz, { cases, seed, concurrency: 32 })
  process.stdout.write(
    `\n  fuzz: ${report.cases} cases in ${report.ms} ms (${report.casesPerSecond}/s), seed ${report.seed}, ` +
      `${report.handshakes} handshakes, ${report.closedByNode.length} connections closed by the node\n`,
  )
  assert.is(report.cases, cases)
  assert.equal(report.validRefusedDetail, [], 'the node refused a valid message')
  assert.equal(report.undecodable, [], 'the node sent something that does not decode')
  for (const k of ['epmd', 'pre', 'mid', 'post:mutated', 'post:badControl', 'post:badCache', 'post:badFragments', 'post:raw'])
    assert.ok(report.byKind[k] && Object.values(report.byKind[k]).some((n) => n > 0), `no ${k} cases ran`)
  assert.ok(report.closedByNode.length > 0)
  // Every connection the node closed after the handshake has its reason in the log.
  await eventually(() => report.closedByNode.every((n) => about(n).some((l) => /closing connection/.test(l.msg))), 'a logged reason for every closed connection')
  const after = await sc.target.mem()
  assert.ok(after.heapUsed - before.heapUsed < 32 * 1024 * 1024, `heap grew ${mib(before.heapUsed)} -> ${mib(after.heapUsed)}`)
  // The erl peer's connection never went down, and it still gets answers.
  await assertAlive()
  assert.is(await sc.erl.eval(`net_adm:ping('${sc.target.name}')`), 'pong')
  assert.ok(!sc.target.logs.some((l) => l.node === sc.erl.nodeName && /down/.test(l.msg)), 'the erl peer was disconnected')
})

test.run()
