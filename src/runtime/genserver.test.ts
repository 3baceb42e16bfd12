import { mock } from 'node:test'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ExportFun, ImproperList, Tuple, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import {
  AbortError,
  BadArgError,
  CallExitError,
  CallingSelfError,
  ErlangError,
  ErlangExit,
  ErlangThrow,
  NoProcError,
  ProcessExitedError,
  TimeoutError,
} from './errors.js'
import { formatTerm } from './format.js'
import { reply, type From, type GenServerCallbacks } from './genserver.js'
import { DEFAULT_CALL_TIMEOUT, Runtime, type MonitorTarget } from './runtime.js'

const A = atom
const newRt = () => new Runtime({ node: 'ts@host', creation: 1, logger: silentLogger })
const tick = () => new Promise<void>((r) => setImmediate(r))

const counter: GenServerCallbacks<number, number> = {
  init: (start) => start,
  handleCall: (req, _from, n) => {
    if (req === A('get')) return { reply: n }
    if (req === A('inc')) return { reply: n + 1, state: n + 1 }
    if (req === A('stop')) return { stop: A('normal'), reply: A('stopping') }
    if (req === A('crash')) throw new Error('crashed in handleCall')
    return { reply: tuple(A('error'), A('unknown')) }
  },
  handleCast: (req, n) => (req === A('inc') ? { state: n + 1 } : undefined),
  handleInfo: (msg, n) => (typeof msg === 'number' ? { state: n + msg } : undefined),
}

test('call, cast and info reach the callbacks in order; state threads through', async () => {
  const rt = newRt()
  await rt.startGenServer(counter, { args: 10, name: 'counter' })
  assert.is(await rt.call('counter', A('inc')), 11)
  rt.cast('counter', A('inc'))
  rt.send('counter', 5)
  assert.is(await rt.call('counter', A('get')), 17)
  assert.is(await rt.call(tuple(A('counter'), A('ts@host')), A('get')), 17)
})

test('init failure rejects the start with the thrown error and the process exits', async () => {
  const rt = newRt()
  const err = await rt
    .startGenServer({
      init: () => {
        throw new RangeError('no config')
      },
    })
    .catch((e) => e)
  assert.instance(err, RangeError)
})

test('a call to an unknown name is NoProcError; to a dead pid too', async () => {
  const rt = newRt()
  const e = await rt.call('nobody', A('x')).catch((x) => x)
  assert.instance(e, NoProcError)
  assert.is(e.code, 'ERR_NOPROC')
  const p = rt.spawn(() => {})
  await p.done
  assert.instance(await rt.call(p.pid, A('x')).catch((x) => x), NoProcError)
})

test('a server that crashes during a call gives CallExitError with its exit reason', async () => {
  const rt = newRt()
  const s = await rt.startGenServer(counter, { args: 0 })
  const e = await rt.call(s.pid, A('crash')).catch((x) => x)
  assert.instance(e, CallExitError)
  assert.is(e.code, 'ERR_CALL_EXIT')
  const reason = e.reason as Tuple
  assert.is(reason.get(0), A('js_error'))
  assert.is((reason.get(1) as Buffer).toString(), 'Error: crashed in handleCall')
})

test('CallExitError and NoProcError name the server alike, as Erlang writes it: {Name, Node} for a {name, node} object, an atom for a name', async () => {
  const rt = newRt()
  const dests = [
    { dest: { name: 'crasher', node: 'ts@host' }, shown: '{crasher,ts@host}', term: tuple(A('crasher'), A('ts@host')) },
    { dest: tuple('crasher', 'ts@host'), shown: '{crasher,ts@host}', term: tuple(A('crasher'), A('ts@host')) },
    { dest: 'crasher', shown: 'crasher', term: A('crasher') },
  ]
  for (const { dest, shown, term } of dests) {
    const gone = await rt.call(dest, A('get')).catch((x) => x)
    assert.instance(gone, NoProcError)
    assert.is(gone.message, `no process: ${shown}`)
    assert.ok(termEquals(gone.target, term), formatTerm(gone.target))
    const s = await rt.startGenServer(counter, { args: 0, name: 'crasher' })
    const e = await rt.call(dest, A('crash')).catch((x) => x)
    assert.instance(e, CallExitError)
    assert.ok(e.message.startsWith(`server ${shown} exited during the call: {js_error,`), e.message)
    assert.ok(termEquals(e.server, term), formatTerm(e.server))
    await s.done
  }
})

test('a call to oneself rejects at once with CallingSelfError (gen_server:call exits calling_self), by pid, name or {Name, Node}', async () => {
  const rt = newRt()
  // Each call is given 2 s: without the check it would wait that long and fail TimeoutError.
  const seen: unknown[] = []
  await rt.startGenServer<null>(
    {
      init: () => null,
      handleCall: async (req, _from, _s, { self }) => {
        if (req !== A('go')) return { reply: A('other') }
        for (const dest of [self.pid, 'selfish', A('selfish'), tuple(A('selfish'), A('ts@host')), { name: 'selfish', node: 'ts@host' }])
          seen.push(await self.call(dest, A('again'), { timeout: 2000 }).catch((e: unknown) => e))
        return { reply: A('done') }
      },
    },
    { name: 'selfish' },
  )
  assert.is(await rt.call('selfish', A('go'), { timeout: 15_000 }), A('done'))
  assert.is(seen.length, 5)
  for (const e of seen) {
    assert.instance(e, CallingSelfError)
    assert.is((e as CallingSelfError).code, 'ERR_CALLING_SELF')
    assert.is((e as CallingSelfError).request, A('again'))
  }
  assert.ok(termEquals((seen[3] as CallingSelfError).server, tuple(A('selfish'), A('ts@host'))))
  assert.ok(termEquals((seen[4] as CallingSelfError).server, tuple(A('selfish'), A('ts@host'))))
  // A plain process calling its own pid; the server is still up and serves another caller.
  const p = rt.spawn(async (self) => {
    const e = await self.call(self.pid, A('x'), { timeout: 2000 }).catch((x: unknown) => x)
    if (!(e instanceof CallingSelfError)) throw e
  })
  assert.is(await p.done, A('normal'))
  assert.is(await rt.call('selfish', A('ping')), A('other'))
})

test('stop with a reply: the caller gets the reply, terminate runs, the server exits with the reason', async () => {
  const rt = newRt()
  const terminated: Term[] = []
  const s = await rt.startGenServer({ ...counter, terminate: (reason, n) => void terminated.push(reason, n) }, { args: 3 })
  assert.is(await rt.call(s.pid, A('stop')), A('stopping'))
  assert.is(await s.done, A('normal'))
  assert.equal(terminated, [A('normal'), 3])
})

test('deferred replies: noreply now, reply(from, value) later, out of order', async () => {
  const rt = newRt()
  const waiting: From[] = []
  const s = await rt.startGenServer<null>({
    init: () => null,
    handleCall: (req, from) => {
      if (req === A('release')) {
        for (const [i, f] of waiting.reverse().entries()) reply(rt, f, i)
        return { reply: waiting.length }
      }
      waiting.push(from)
      return { noreply: true }
    },
  })
  const a = rt.call(s.pid, A('wait'))
  const b = rt.call(s.pid, A('wait'))
  await tick()
  assert.is(await rt.call(s.pid, A('release')), 2)
  assert.is(await b, 0)
  assert.is(await a, 1)
})

test('call timeout: TimeoutError, and a late reply does not leak into the caller mailbox', async () => {
  const rt = newRt()
  let late: From | undefined
  const s = await rt.startGenServer<null>({
    init: () => null,
    handleCall: (_req, from) => {
      late = from
      return { noreply: true }
    },
  })
  await rt.withProcess(async (self) => {
    const e = await self.call(s.pid, A('slow'), { timeout: 10 }).catch((x) => x)
    assert.instance(e, TimeoutError)
    reply(s, late!, A('too late'))
    await tick()
    assert.is(self.mailbox.size, 0, 'the alias was deactivated with the monitor')
  })
})

test('a call given no timeout waits callTimeout: 5000 ms by default (gen_server:call/2), or the runtime\'s option', async () => {
  const mute: GenServerCallbacks<null> = { init: () => null, handleCall: () => ({ noreply: true }) }
  // The option: a short default; an explicit timeout still wins.
  const rt = new Runtime({ node: 'ts@host', creation: 1, logger: silentLogger, callTimeout: 30 })
  await rt.startGenServer(mute, { name: 'mute' })
  // (The signal only bounds the test: it sets no timeout.)
  const bound = new AbortController()
  const boundTimer = setTimeout(() => bound.abort(), 2000)
  const e = await rt.call('mute', A('x'), { signal: bound.signal }).catch((x) => x)
  clearTimeout(boundTimer)
  assert.instance(e, TimeoutError)
  assert.is(e.timeout, 30)
  assert.is((await rt.call('mute', A('x'), { timeout: 60 }).catch((x) => x)).timeout, 60)
  for (const bad of [-1, Number.NaN, '100'] as unknown as number[])
    assert.throws(() => new Runtime({ node: 'ts@host', creation: 1, callTimeout: bad }), (x: unknown) => x instanceof BadArgError)
  // The default, on mocked timers so that the test does not wait 5 s: pending at 4999 ms, TimeoutError at 5000.
  assert.is(DEFAULT_CALL_TIMEOUT, 5000)
  mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  try {
    const d = newRt()
    assert.is(d.callTimeout, 5000)
    await d.startGenServer(mute, { name: 'mute' })
    let outcome: unknown = 'pending'
    const infinite = d.call('mute', A('y'), { timeout: Infinity }).catch((x) => x)
    void d.call('mute', A('x')).then((v) => (outcome = { v }), (x: unknown) => (outcome = x))
    await tick()
    mock.timers.tick(4999)
    await tick()
    assert.is(outcome, 'pending')
    mock.timers.tick(1)
    await tick()
    assert.instance(outcome, TimeoutError)
    assert.is((outcome as TimeoutError).timeout, 5000)
    // Infinity: no limit.
    mock.timers.tick(10 * 24 * 3600 * 1000)
    await tick()
    d.shutdown()
    assert.instance(await infinite, ProcessExitedError)
  } finally {
    mock.timers.reset()
  }
})

test('an init timeout past 2^31 - 1 ms waits (setTimeout alone fired it after 1 ms)', async () => {
  const rt = newRt()
  const s = await rt.startGenServer<number>({ init: () => new Promise((r) => setTimeout(() => r(1), 30)) }, { timeout: 2 ** 31 })
  assert.ok(s.alive)
})

test('call aborted: AbortError named after the call, with the signal\'s reason as cause', async () => {
  const rt = newRt()
  const s = await rt.startGenServer<null>({ init: () => null, handleCall: () => ({ noreply: true }) })
  await rt.withProcess(async (self) => {
    const ac = new AbortController()
    const why = new Error('user cancelled')
    setTimeout(() => ac.abort(why), 5)
    const e = await self.call(s.pid, A('slow'), { signal: ac.signal }).catch((x) => x)
    assert.instance(e, AbortError)
    assert.is(e.message, 'gen_server call aborted')
    assert.is(e.cause, why)
    const t = await self.call(s.pid, A('slow'), { timeout: 5 }).catch((x) => x)
    assert.is(t.message, 'gen_server call timed out after 5 ms')
  })
})

test('a caller dying mid-call is harmless: the server carries on', async () => {
  const rt = newRt()
  let from: From | undefined
  const s = await rt.startGenServer<null>({
    init: () => null,
    handleCall: (req, f) => {
      if (req === A('ping')) return { reply: A('pong') }
      from = f
      return { noreply: true }
    },
  })
  const caller = rt.spawn((self) => self.call(s.pid, A('hang')))
  await tick()
  rt.exit(caller.pid, A('kill'))
  await caller.done
  reply(s, from!, A('nobody listens'))
  assert.is(await rt.call(s.pid, A('ping')), A('pong'))
})

test('ErlangThrow from a callback is its result, as gen_server takes throw(V): a valid one is used, another is bad_return_value', async () => {
  const rt = newRt()
  const thrower: GenServerCallbacks<number> = {
    // A throw from init is init's result: the state.
    init: () => {
      throw new ErlangThrow(7)
    },
    handleCall: (req, _from, n) => {
      if (req === A('get')) return { reply: n }
      if (req === A('throw_reply')) throw new ErlangThrow({ reply: tuple(A('thrown'), n), state: n + 1 })
      throw new ErlangThrow(A('thrown_in_call'))
    },
    handleCast: (req, n) => {
      if (req === A('throw_state')) throw new ErlangThrow({ state: n * 10 })
      throw new ErlangThrow(A('bad_cast'))
    },
    handleInfo: (_msg, n) => {
      throw new ErlangThrow({ noreply: true, state: n + 3 })
    },
  }
  const s = await rt.startGenServer(thrower, { name: 'thrower' })
  assert.is(await rt.call('thrower', A('get')), 7)
  assert.ok(termEquals(await rt.call('thrower', A('throw_reply')), tuple(A('thrown'), 7)))
  rt.cast('thrower', A('throw_state'))
  rt.send('thrower', A('info'))
  assert.is(await rt.call('thrower', A('get')), 83)
  const bad = await rt.call('thrower', A('other')).catch((e: unknown) => e)
  assert.instance(bad, CallExitError)
  const badReturn = tuple(A('bad_return_value'), A('thrown_in_call'))
  assert.ok(termEquals((bad as CallExitError).reason, badReturn), formatTerm((bad as CallExitError).reason))
  assert.ok(termEquals(await s.done, badReturn))
  // handleCast (and handleInfo) throwing what is no result.
  const c = await rt.startGenServer(thrower)
  rt.cast(c.pid, A('bad'))
  assert.ok(termEquals(await c.done, tuple(A('bad_return_value'), A('bad_cast'))), formatTerm(c.exitReason))
})

test('an exception from terminate is the exit reason, in place of the one the server stopped with; a throw from it is a return', async () => {
  const rt = newRt()
  const run = async (terminate: () => never, req: Term) => {
    const s = await rt.startGenServer<null>({
      init: () => null,
      handleCall: (r) => {
        if (r === A('crash')) throw new ErlangError(A('first'))
        return { stop: A('normal'), reply: A('stopping') }
      },
      terminate,
    })
    const replied = await rt.call(s.pid, req).catch((e: unknown) => (e instanceof CallExitError ? tuple(A('call_exit'), e.reason) : A('other')))
    return { replied, reason: await s.done }
  }
  const fromTerminate = () => {
    throw new ErlangError(A('from_terminate'))
  }
  // A callback failed, then terminate: terminate's exception is the reason (error: {Reason, Stack}; exit: Reason).
  let r = await run(fromTerminate, A('crash'))
  assert.ok(termEquals(r.reason, tuple(A('from_terminate'), [])), formatTerm(r.reason))
  r = await run(() => {
    throw new ErlangExit(A('term_exit_reason'))
  }, A('crash'))
  assert.is(r.reason, A('term_exit_reason'))
  // A throw from terminate is a return: the first reason stays.
  r = await run(() => {
    throw new ErlangThrow(A('ignored'))
  }, A('crash'))
  assert.ok(termEquals(r.reason, tuple(A('first'), [])), formatTerm(r.reason))
  // {stop, normal, Reply}: the caller still gets the reply; terminate's exception is the exit reason.
  r = await run(fromTerminate, A('stop'))
  assert.is(r.replied, A('stopping'))
  assert.ok(termEquals(r.reason, tuple(A('from_terminate'), [])), formatTerm(r.reason))
  r = await run(() => {
    throw new ErlangThrow(A('ignored'))
  }, A('stop'))
  assert.is(r.reason, A('normal'))
})

test('Erlang-style calls by hand: [alias | Ref] tags reply to the alias; plain ref tags to the pid', async () => {
  const rt = newRt()
  await rt.startGenServer(counter, { args: 1, name: 'c' })
  const got = await rt.withProcess(async (self) => {
    const ref = self.monitor('c', { alias: 'demonitor' })
    const tag = new ImproperList([A('alias')], ref)
    self.send('c', tuple(A('$gen_call'), tuple(self.pid, tag), A('get')))
    const r1 = await self.receive()
    self.demonitor(ref, { flush: true })
    const plain = self.makeRef()
    self.send('c', tuple(A('$gen_call'), tuple(self.pid, plain), A('inc')))
    const r2 = await self.receive()
    return [r1, tuple(tag, 1), r2, tuple(plain, 2)]
  })
  assert.ok(termEquals(got[0], got[1]))
  assert.ok(termEquals(got[2], got[3]))
})

test('reply goes to the alias in the tag, not to the From pid, for each tag shape gen:reply/2 matches', async () => {
  const rt = newRt()
  const other = rt.spawn((self) => self.receive())
  const got = await rt.withProcess(async (self) => {
    const alias = self.alias()
    const cell = new ImproperList([A('alias')], alias)
    const tags: Term[] = [cell, new ImproperList([cell], A('label')), [cell, A('label')], [cell]]
    for (const [i, tag] of tags.entries()) reply(rt, tuple(other.pid, tag) as From, i)
    const out: Term[] = []
    for (let i = 0; i < tags.length; i++) out.push(await self.receive(undefined, { timeout: 1000 }))
    return tags.map((tag, i) => termEquals(out[i], tuple(tag, i)))
  })
  assert.equal(got, [true, true, true, true])
  assert.is(other.mailbox.size, 0, 'nothing reached the From pid')
})

/** A gen_server trapping exits, linked to a parent process; the reasons its terminate saw. */
async function serverOfParent(rt: Runtime) {
  const terminated: Term[] = []
  const parent = rt.spawn((self) => self.receive())
  const s = await rt.startGenServer<null>(
    { init: () => null, terminate: (r) => void terminated.push(r) },
    { link: parent, trapExit: true },
  )
  return { parent, s, terminated }
}

test('gen_server linked to a trapping parent: the parent exit stops it through terminate', async () => {
  const rt = newRt()
  const { parent, s, terminated } = await serverOfParent(rt)
  rt.exit(parent.pid, A('shutdown'))
  assert.is(await s.done, A('shutdown'))
  assert.equal(terminated, [A('shutdown')])
})

test('terminate also runs when the server is killed', async () => {
  const rt = newRt()
  const terminated: Term[] = []
  const s = await rt.startGenServer<string>({ init: () => 'st', terminate: (r, st) => void terminated.push(r, st) })
  rt.exit(s.pid, A('kill'))
  await s.done
  await tick()
  assert.equal(terminated, [A('killed'), 'st'])
})

// --- sys system messages ------------------------------------------------------------------------

/** What sys:send_system_msg/2 does: gen:call(Server, system, Request) → {system, {Self, [alias | Ref]}, Request}. */
async function sys(rt: Runtime, server: MonitorTarget, request: Term, timeout = 1000): Promise<Term> {
  return rt.withProcess(async (self) => {
    const ref = self.monitor(server, { alias: 'demonitor' })
    const tag = new ImproperList([A('alias')], ref)
    self.send(server, tuple(A('system'), tuple(self.pid, tag), request))
    const r = await self.receive((m) => (m instanceof Tuple && m.length === 2 && termEquals(m.get(0), tag) ? m : undefined), {
      timeout,
    })
    self.demonitor(ref, { flush: true })
    return r.get(1)
  })
}

const eq = (a: Term, b: Term) => assert.ok(termEquals(a, b), `${formatTerm(a)} =/= ${formatTerm(b)}`)
const callbackFailed = (cb: string, reason: Term) =>
  tuple(A('error'), tuple(A('callback_failed'), tuple(A('gen_server'), A(cb)), tuple(A('error'), reason)))

test('sys get_state: the current state; a state the codec cannot encode is a callback_failed error', async () => {
  const rt = newRt()
  const s = await rt.startGenServer(counter, { args: 4, name: 'st' })
  eq(await sys(rt, 'st', A('get_state')), 4)
  await rt.call(s.pid, A('inc'))
  eq(await sys(rt, s.pid, A('get_state')), 5)
  const odd = await rt.startGenServer<Set<number>>({ init: () => new Set([1]) })
  eq(await sys(rt, odd.pid, A('get_state')), callbackFailed('system_get_state', tuple(A('not_a_term'), Buffer.from('cannot encode a Set'))))
  assert.ok(odd.alive)
})

test('sys get_status: the shape gen_server gives, with name, sys state, parent and state', async () => {
  const rt = newRt()
  const s = await rt.startGenServer(counter, { args: 9, name: 'stat' })
  const expected = (sysState: string) =>
    tuple(A('status'), s.pid, tuple(A('module'), A('gen_server')), [
      [],
      A(sysState),
      s.pid,
      [],
      [
        tuple(A('header'), 'Status for generic server stat'),
        tuple(A('data'), [tuple('Status', A(sysState)), tuple('Parent', s.pid), tuple('Logged events', [])]),
        tuple(A('data'), [tuple('State', 9)]),
      ],
    ])
  eq(await sys(rt, 'stat', A('get_status')), expected('running'))
  eq(await sys(rt, 'stat', A('suspend')), A('ok'))
  eq(await sys(rt, 'stat', A('get_status')), expected('suspended'))
  eq(await sys(rt, 'stat', A('resume')), A('ok'))
  // Linked to a parent: that pid is the Parent; an unregistered server's header names its pid.
  const parent = rt.spawn((self) => self.receive())
  const child = await rt.startGenServer<null>({ init: () => null }, { link: parent })
  const st = (await sys(rt, child.pid, A('get_status'))) as Tuple
  const items = st.get(3) as Term[]
  eq(items[2], parent.pid)
  eq((items[4] as Term[])[0], tuple(A('header'), `Status for generic server <0.${child.pid.id}.${child.pid.serial}>`))
})

test('sys suspend: calls and casts wait until resume, system messages are still served, order is kept', async () => {
  const rt = newRt()
  const s = await rt.startGenServer(counter, { args: 0 })
  eq(await sys(rt, s.pid, A('suspend')), A('ok'))
  let done = false
  const pending = rt.call(s.pid, A('inc')).then((v) => ((done = true), v))
  rt.cast(s.pid, A('inc'))
  rt.send(s.pid, 10)
  for (let i = 0; i < 5; i++) await tick()
  assert.is(done, false, 'the call waits while suspended')
  eq(await sys(rt, s.pid, A('get_state')), 0)
  eq(await sys(rt, s.pid, A('resume')), A('ok'))
  assert.is(await pending, 1)
  assert.is(await rt.call(s.pid, A('get')), 12)
})

test('sys: unknown requests (and change_code) answer {error, {unknown_system_msg, Req}}; unknown debug options unknown_debug', async () => {
  const rt = newRt()
  const s = await rt.startGenServer(counter, { args: 1 })
  for (const req of [A('wat'), tuple(A('change_code'), A('m'), 1, [])])
    eq(await sys(rt, s.pid, req), tuple(A('error'), tuple(A('unknown_system_msg'), req)))
  for (const what of [A('wat'), tuple(A('log'), A('bogus')), tuple(A('log'), tuple(true, 0)), tuple(A('statistics'), 1), tuple(A('trace'), A('x'))])
    eq(await sys(rt, s.pid, tuple(A('debug'), what)), A('unknown_debug'))
  assert.is(await rt.call(s.pid, A('get')), 1)
})

test('sys debug: log keeps the last N events as gen_server logs them, statistics counts, no_debug clears', async () => {
  const lines: string[] = []
  const logger = { ...silentLogger, warn: (m: string) => void lines.push(m) }
  const rt = new Runtime({ node: 'ts@host', creation: 1, logger })
  const s = await rt.startGenServer(counter, { args: 1, name: 'dbg' })
  const dbg = (what: Term) => sys(rt, s.pid, tuple(A('debug'), what))
  eq(await dbg(tuple(A('log'), A('get'))), tuple(A('ok'), []))
  eq(await dbg(tuple(A('statistics'), A('get'))), tuple(A('ok'), A('no_statistics')))
  eq(await dbg(tuple(A('log'), true)), A('ok'))
  eq(await dbg(tuple(A('statistics'), true)), A('ok'))
  eq(await dbg(tuple(A('trace'), true)), A('ok'))
  assert.is(await rt.call(s.pid, A('inc')), 2)
  rt.cast(s.pid, A('inc'))
  rt.send(s.pid, 10)
  assert.is(await rt.call(s.pid, A('get')), 13)
  const log = (await dbg(tuple(A('log'), A('get')))) as Tuple
  const events = log.get(1) as Term[]
  const kinds = events.map((e) => ((e as Tuple).get(0) as { name: string }).name)
  assert.equal(kinds, ['in', 'out', 'in', 'noreply', 'in', 'noreply', 'in', 'out'])
  const first = events[0] as Tuple
  assert.is(((first.get(1) as Tuple).get(0) as { name: string }).name, '$gen_call')
  eq((events[1] as Tuple).get(1), 2) // {out, Reply, From, State}
  eq((events[1] as Tuple).get(3), 2)
  eq((events[3] as Tuple).get(1), 3) // {noreply, State} after the cast
  eq(events[4], tuple(A('in'), 10))
  const stats = (await dbg(tuple(A('statistics'), A('get')))) as Tuple
  const st = new Map((stats.get(1) as Tuple[]).map((t) => [(t.get(0) as { name: string }).name, t.get(1)]))
  assert.equal([st.get('messages_in'), st.get('messages_out'), st.get('reductions')], [4, 2, 0])
  assert.ok(st.get('start_time') instanceof Tuple && st.get('current_time') instanceof Tuple)
  assert.ok(lines.some((l) => /^\*DBG\* dbg got call inc from <.*>$/.test(l)), lines.join('\n'))
  assert.ok(lines.includes('*DBG* dbg got cast inc'), lines.join('\n'))
  assert.ok(lines.includes('*DBG* dbg new state 3'), lines.join('\n'))
  // {log, {true, 2}}: the next event trims the log to the last two.
  eq(await dbg(tuple(A('log'), tuple(true, 2))), A('ok'))
  rt.send(s.pid, 1)
  assert.is(await rt.call(s.pid, A('get')), 14)
  const last = ((await dbg(tuple(A('log'), A('get')))) as Tuple).get(1) as Term[]
  assert.equal(last.map((e) => ((e as Tuple).get(0) as { name: string }).name), ['in', 'out'])
  assert.is(((last[0] as Tuple).get(1) as Tuple).get(2), A('get'))
  // sys:get_status shows the logged events.
  const status = (await sys(rt, s.pid, A('get_status'))) as Tuple
  const misc = ((status.get(3) as Term[])[4] as Term[])[1] as Tuple
  eq(((misc.get(1) as Term[])[2] as Tuple).get(1), last)
  eq(await dbg(A('no_debug')), A('ok'))
  eq(await dbg(tuple(A('log'), A('get'))), tuple(A('ok'), []))
  eq(await dbg(tuple(A('statistics'), A('get'))), tuple(A('ok'), A('no_statistics')))
  const before = lines.length
  assert.is(await rt.call(s.pid, A('get')), 14)
  assert.is(lines.length, before, 'no trace after no_debug')
})

test('sys replace_state: no Erlang node to run the fun from a local caller, not a fun, a state that is no term', async () => {
  const rt = newRt()
  const s = await rt.startGenServer(counter, { args: 2 })
  const fun = new ExportFun(A('erlang'), A('abs'), 1)
  eq(await sys(rt, s.pid, tuple(A('replace_state'), fun)), callbackFailed('system_replace_state', A('no_erlang_node')))
  eq(await sys(rt, s.pid, tuple(A('replace_state'), 42)), callbackFailed('system_replace_state', tuple(A('badfun'), 42)))
  assert.is(await rt.call(s.pid, A('get')), 2, 'the state is kept')
  const obj = await rt.startGenServer<{ n: number }>({ init: () => ({ n: 1 }) })
  const r = (await sys(rt, obj.pid, tuple(A('replace_state'), fun))) as Tuple
  const reason = (((r.get(1) as Tuple).get(2) as Tuple).get(1) as Tuple)
  assert.is(reason.get(0), A('not_a_term'))
})

test('sys terminate: replies ok, runs terminate with the reason, exits with it', async () => {
  const rt = newRt()
  const terminated: Term[] = []
  const s = await rt.startGenServer({ ...counter, terminate: (reason, n) => void terminated.push(reason, n) }, { args: 5 })
  eq(await sys(rt, s.pid, tuple(A('terminate'), A('shutdown'))), A('ok'))
  assert.is(await s.done, A('shutdown'))
  assert.equal(terminated, [A('shutdown'), 5])
})

test('a suspended server still stops on its trapping parent exit', async () => {
  const rt = newRt()
  const { parent, s, terminated } = await serverOfParent(rt)
  eq(await sys(rt, s.pid, A('suspend')), A('ok'))
  rt.exit(parent.pid, A('shutdown'))
  assert.is(await s.done, A('shutdown'))
  assert.equal(terminated, [A('shutdown')])
})

test.run()
