// The floor measurement compares like with like only if both bare servers echo exactly what they are sent
// and the C client counts real round trips (no timing is asserted).
//   npx uvu -r tsx bench floor.test.ts$
import { randomBytes } from 'node:crypto'
import * as net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { benchScript, buildPingpong } from './build.js'
import { measureFloor } from './floor.js'
import { stopAllTargets, Target } from './targets.js'

test.after(stopAllTargets)

/** Sends each payload in turn on one connection and collects what comes back for it. */
async function roundTrips(port: number, payloads: Buffer[]): Promise<Buffer[]> {
  const socket = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const replies: Buffer[] = []
  let pending = Buffer.alloc(0)
  for (const p of payloads) {
    socket.write(p)
    while (pending.length < p.length) {
      const chunk = await new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${p.length - pending.length} of ${p.length} bytes never came back`)), 5000)
        socket.once('data', (d: Buffer) => (clearTimeout(t), resolve(d))).once('error', reject)
      })
      pending = Buffer.concat([pending, chunk])
    }
    replies.push(pending.subarray(0, p.length))
    pending = pending.subarray(p.length)
  }
  socket.destroy()
  return replies
}

const PAYLOADS = [1, 80, 1500, 65536, 300_000].map((n) => randomBytes(n))

test('the bare C server and the bare Node.js server echo every byte they are sent', async () => {
  const pingpong = await buildPingpong()
  if (!pingpong.ok) throw new Error(pingpong.reason)
  // The compiled script when the bench has built one, else through tsx: both are the same 14 lines.
  const bare = benchScript('bare-echo')
  const servers = [
    await Target.start('bare C echo', pingpong.value, ['server'], {}),
    await Target.start('bare Node.js echo', process.execPath, [...bare.nodeArgs, bare.script], {}),
  ]
  for (const s of servers) {
    const replies = await roundTrips(Number(s.node), PAYLOADS)
    PAYLOADS.forEach((p, i) => assert.ok(replies[i].equals(p), `server on ${s.node}: payload ${i} (${p.length} bytes) came back changed`))
    await s.stop()
  }
})

test('measureFloor runs the C client against both servers, interleaved, and counts round trips', async () => {
  const floor = await measureFloor({ reps: 2, warmMs: 50, measureMs: 200 })
  if (!floor.ok) throw new Error(floor.reason)
  assert.is(floor.value.node.length, 2)
  assert.is(floor.value.c.length, 2)
  for (const r of [...floor.value.node, ...floor.value.c]) assert.ok(r > 100, `a rate of ${r}/s is not a ping-pong over loopback`)
})

test.run()
