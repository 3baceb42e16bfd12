// Load: 32 erl processes send to 32 TypeScript echo processes on a node in its own OS process and get every
// message back (TS_CNODE_LOAD_MESSAGES, default 100,000; `npm run soak` sends one million): none lost, the
// order of each sender kept. RSS before / during / after is reported; the assertion on memory is a loose
// bound on what stays after the run.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { describeLoad, runLoad } from './load.js'

test('100,000 messages from 32 erl processes to TypeScript processes and back: none lost, per-sender order kept, memory back after', async () => {
  const total = Number(process.env.TS_CNODE_LOAD_MESSAGES ?? 100_000)
  const f = await runLoad({ total, senders: 32, window: 100 })
  process.stdout.write(`\n${describeLoad(f)}\n`)
  const expected = f.senders * f.perSender
  assert.is(f.sent, expected)
  assert.is(f.received, expected)
  assert.is(f.missing, 0)
  assert.is(f.outOfOrder, 0)
  // Loose: what the run leaves behind in the heap (after a full GC) is small next to what went through.
  assert.ok(f.memAfter.heapUsed - f.memBefore.heapUsed < 32 * 1024 * 1024, describeLoad(f))
})

test.run()
