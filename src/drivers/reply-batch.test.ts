import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Pid, atom, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import { Runtime, type From, type GenServerContext, type Process } from '../runtime/index.js'
import { ReplyBatch, sessionReplies } from './reply-batch.js'

const rt = new Runtime({ node: 'ts@host', creation: 1, logger: silentLogger })

/** A process that collects what it receives until told `stop`. */
function collector(): { proc: Process; got: Term[] } {
  const got: Term[] = []
  const proc = rt.spawn(async (self) => {
    for (;;) {
      const m = await self.receive()
      if (m === atom('stop')) return
      got.push(m)
    }
  })
  return { proc, got }
}

function manualBatch() {
  const scheduled: (() => void)[] = []
  const batch = new ReplyBatch((fn) => scheduled.push(fn))
  return { batch, scheduled }
}

const settle = () => new Promise((r) => setImmediate(r))

test('replies are held until the flush, scheduled once per batch, and leave in the order they were held', async () => {
  const { batch, scheduled } = manualBatch()
  const to = collector()
  const sender = rt.spawn(async (self) => void (await self.receive((m) => m === atom('stop'))))
  batch.send(sender, to.proc.pid, 1)
  batch.send(sender, to.proc.pid, 2)
  batch.send(sender, to.proc.pid, 3)
  assert.is(scheduled.length, 1)
  assert.is(batch.size, 3)
  await settle()
  assert.equal(to.got, [])
  scheduled[0]()
  assert.is(batch.size, 0)
  await settle()
  assert.equal(to.got, [1, 2, 3])
  batch.send(sender, to.proc.pid, 4)
  assert.is(scheduled.length, 2, 'a new batch schedules a new flush')
  scheduled[1]()
  await settle()
  assert.equal(to.got, [1, 2, 3, 4])
  rt.send(to.proc.pid, atom('stop'))
  rt.send(sender.pid, atom('stop'))
})

test('gen_server replies go to the caller as {Tag, Reply}; replies and sends from a process that has exited are dropped, one held before it exited is not', async () => {
  const { batch, scheduled } = manualBatch()
  const to = collector()
  const server = rt.spawn(async (self) => void (await self.receive((m) => m === atom('stop'))))
  const ctx: GenServerContext = { self: server, reply: (from, v) => rt.route(server.pid, from.get(0) as Pid, tuple(from.get(1), v)) }
  const tag = rt.makeRef()
  batch.reply(ctx, tuple(to.proc.pid, tag) as From, atom('answer'))
  const gone = rt.spawn(async () => {})
  await gone.done
  batch.reply({ self: gone, reply: ctx.reply }, tuple(to.proc.pid, rt.makeRef()) as From, atom('from_a_dead_server'))
  batch.send(gone, to.proc.pid, atom('from_the_dead'))
  const exiting = rt.spawn(async (self) => void (await self.receive((m) => m === atom('stop'))))
  batch.send(exiting, to.proc.pid, atom('said_while_alive'))
  rt.send(exiting.pid, atom('stop'))
  await exiting.done
  scheduled[0]()
  await settle()
  assert.equal(to.got.length, 2)
  assert.ok((to.got[0] as ReturnType<typeof tuple>).get(1) === atom('answer'))
  assert.is(to.got[1], atom('said_while_alive'))
  rt.send(to.proc.pid, atom('stop'))
  rt.send(server.pid, atom('stop'))
})

test('a reply that throws does not cost the others theirs', async () => {
  const { batch, scheduled } = manualBatch()
  const to = collector()
  const server = rt.spawn(async (self) => void (await self.receive((m) => m === atom('stop'))))
  const bad: GenServerContext = {
    self: server,
    reply: () => {
      throw new Error('no route')
    },
  }
  batch.reply(bad, tuple(to.proc.pid, rt.makeRef()) as From, 1)
  batch.send(server, to.proc.pid, 2)
  scheduled[0]()
  await settle()
  assert.equal(to.got, [2])
  rt.send(to.proc.pid, atom('stop'))
  rt.send(server.pid, atom('stop'))
})

test('the shared batch flushes by itself on setImmediate, and flush() sends early', async () => {
  const to = collector()
  const sender = rt.spawn(async (self) => void (await self.receive((m) => m === atom('stop'))))
  sessionReplies.send(sender, to.proc.pid, 'a')
  await settle()
  await settle()
  assert.equal(to.got, ['a'])
  sessionReplies.send(sender, to.proc.pid, 'b')
  sessionReplies.flush()
  assert.is(sessionReplies.size, 0)
  await settle()
  assert.equal(to.got, ['a', 'b'])
  rt.send(to.proc.pid, atom('stop'))
  rt.send(sender.pid, atom('stop'))
})

test.run()
