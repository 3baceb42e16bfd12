// pg sessions on a bare Runtime against a real PostgreSQL (no Erlang node): the session protocol that
// pg_sync / pg_async use, owners dying, binary mode, parameters. integration/drivers.test.ts runs the
// same through real erl.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import pg from 'pg'
import { Pid, Tuple, atom, isAtom, termEquals, tuple, type Term } from '../src/etf/terms.js'
import { silentLogger } from '../src/logger.js'
import { Runtime, type Process } from '../src/runtime/index.js'
import { startDrivers, type Drivers } from '../src/drivers/driver.js'
import { PG_ASYNC_COMMAND } from '../src/drivers/session.js'
import { eventually, pgUrl, requirePostgres } from './harness.js'

const rt = new Runtime({ node: 'ts@host', creation: 1, logger: silentLogger })
let drivers: Drivers
let admin: pg.Client
const A = atom

test.before(async () => {
  await requirePostgres()
  drivers = await startDrivers(rt, { count: 2, maxQueryBytes: 1 << 20 })
  admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
})
test.after(async () => {
  await admin?.end()
  await drivers?.stop()
})

const eq = (a: Term, b: Term, msg?: string) => assert.ok(termEquals(a, b), msg ?? `${show(a)} =/= ${show(b)}`)
function show(t: Term): string {
  if (t instanceof Tuple) return `{${t.elements.map(show).join(',')}}`
  if (Array.isArray(t)) return `[${t.map(show).join(',')}]`
  if (Buffer.isBuffer(t)) return `<<${JSON.stringify(t.toString('latin1'))}>>`
  if (typeof t === 'string') return JSON.stringify(t)
  return String(t)
}
const ok = (x: Term) => tuple(A('ok'), x)

/** Runs `body` in an owner process that stays alive until told to stop (or killed). */
function owner(body: (self: Process) => Promise<Term>): { proc: Process; result: Promise<Term> } {
  let resolve!: (t: Term) => void
  let reject!: (e: unknown) => void
  const result = new Promise<Term>((res, rej) => ((resolve = res), (reject = rej)))
  const proc = rt.spawn(async (self) => {
    try {
      resolve(await body(self))
    } catch (e) {
      reject(e)
    }
    await self.receive((m) => m === A('stop'))
  })
  return { proc, result }
}

const backendsNamed = async (app: string) =>
  (await admin.query('select pid from pg_stat_activity where application_name = $1', [app])).rowCount

test('the seed session: connect, select rows, create/insert, an SQL error, disconnect', async () => {
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_01', tuple(A('pg_connect'), pgUrl, []))) as Tuple
    assert.ok(isAtom(r.get(0), 'ok'), show(r))
    const port = r.get(1) as Pid
    const out: Term[] = []
    out.push(await self.call(port, tuple(A('select'), 'select 1 as a, null::text as b, \'x\' as c')))
    out.push(await self.call(port, tuple(A('select'), 'create temp table s (id int, name text)')))
    out.push(await self.call(port, tuple(A('select'), "insert into s values (1, 'one')")))
    out.push(await self.call(port, tuple(A('select'), 'select * from s')))
    out.push(await self.call(port, tuple(A('select'), 'select * from nosuch')))
    out.push(await self.call(port, A('disconnect')))
    return out
  })
  const out = (await result) as Term[]
  eq(out[0], ok([['a', 'b', 'c'], ['1', [], 'x']]))
  eq(out[1], ok([]))
  eq(out[2], ok('1'))
  eq(out[3], ok([['id', 'name'], ['1', 'one']]))
  eq(out[4], tuple(A('error'), 'ERROR:  relation "nosuch" does not exist\nLINE 1: select * from nosuch\n                      ^\n'))
  eq(out[5], A('ok'))
  rt.send(proc.pid, A('stop'))
})

test('pg_async: replies arrive as {Port, {data, Term}} messages, connect result first', async () => {
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_02', tuple(A('pg_connect_async'), pgUrl, []))) as Tuple
    const port = r.get(1) as Pid
    const data = (p: Pid) =>
      self.receive((m) => (m instanceof Tuple && m.length === 2 && termEquals(m.get(0), p) ? (m.get(1) as Tuple).get(1) : undefined), {
        timeout: 10_000,
      })
    const connected = await data(port)
    self.send(port, tuple(PG_ASYNC_COMMAND, self.pid, tuple(A('select'), 'select 40 + 2 as answer')))
    const sel = await data(port)
    self.send(port, tuple(PG_ASYNC_COMMAND, self.pid, A('disconnect')))
    const disc = await data(port)
    return [connected, sel, disc]
  })
  const [connected, sel, disc] = (await result) as Term[]
  eq(connected, A('ok'))
  eq(sel, ok([['answer'], ['42']]))
  eq(disc, A('ok'))
  rt.send(proc.pid, A('stop'))
})

test('a failed connection answers libpq text and the session ends', async () => {
  const { proc, result } = owner(async (self) => self.call('some_driver_01', tuple(A('pg_connect'), 'host=127.0.0.1 port=1 user=x', [])))
  const r = (await result) as Tuple
  assert.ok(isAtom(r.get(0), 'error'))
  assert.is(
    r.get(1),
    'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n',
  )
  const bad = owner(async (self) => self.call('some_driver_01', tuple(A('pg_connect'), 'host', [])))
  eq(await bad.result, tuple(A('error'), 'missing "=" after "host" in connection info string\n'))
  rt.send(proc.pid, A('stop'))
  rt.send(bad.proc.pid, A('stop'))
})

test('the owner dies: its backend disappears from pg_stat_activity', async () => {
  const app = `ts_cnode_owner_${process.pid}_${Date.now()}`
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_01', tuple(A('pg_connect'), `${pgUrl}?application_name=${app}`, []))) as Tuple
    return r.get(1)
  })
  const port = (await result) as Pid
  assert.is(await backendsNamed(app), 1)
  rt.exit(proc.pid, A('kill'))
  await eventually(async () => (await backendsNamed(app)) === 0, 'the backend to go away')
  await eventually(() => rt.process(port) === undefined, 'the session process to end')
})

test('the server terminates an idle session: the next select says so as libpq does, then "no connection"', async () => {
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_01', tuple(A('pg_connect'), pgUrl, []))) as Tuple
    const port = r.get(1) as Pid
    const info = (await self.call(port, A('info'))) as Map<Term, Term>
    await admin.query('select pg_terminate_backend($1)', [info.get(A('backend_pid'))])
    await new Promise((res) => setTimeout(res, 300))
    return [await self.call(port, tuple(A('select'), 'select 1')), await self.call(port, tuple(A('select'), 'select 1')), await self.call(port, A('disconnect'))]
  })
  const out = (await result) as Term[]
  eq(
    out[0],
    tuple(
      A('error'),
      'FATAL:  terminating connection due to administrator command\nserver closed the connection unexpectedly\n' +
        '\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n',
    ),
  )
  eq(out[1], tuple(A('error'), 'no connection to the server\n'))
  eq(out[2], A('ok'))
  rt.send(proc.pid, A('stop'))
})

test('the owner ends normally without disconnecting: the session ends too, as a port would close', async () => {
  const app = `ts_cnode_normal_${process.pid}_${Date.now()}`
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_02', tuple(A('pg_connect'), `${pgUrl}?application_name=${app}`, []))) as Tuple
    return r.get(1)
  })
  const port = (await result) as Pid
  assert.is(await backendsNamed(app), 1)
  rt.send(proc.pid, A('stop'))
  await proc.done
  await eventually(async () => (await backendsNamed(app)) === 0, 'the backend to go away')
  await eventually(() => rt.process(port) === undefined, 'the session process to end')
})

test('binary mode: binaries, null, integer counts, bytea bytes; parameters incl. a large binary', async () => {
  const big = Buffer.alloc(200_000, 0x5a)
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_02', tuple(A('pg_connect'), pgUrl, [A('binary')]))) as Tuple
    const port = r.get(1) as Pid
    const out: Term[] = []
    out.push(await self.call(port, tuple(A('select'), 'select 1 as n, null::int as z, \'\\x00ff\'::bytea as b, \'é\' as t')))
    out.push(await self.call(port, tuple(A('select'), 'create temp table bm (id int, data bytea)')))
    out.push(await self.call(port, tuple(A('select'), 'insert into bm values ($1, $2)', [7, big])))
    out.push(await self.call(port, tuple(A('select'), 'select id, length(data), data from bm where id = $1', ['7'])))
    out.push(await self.call(port, tuple(A('select'), 'update bm set id = 8', [])))
    out.push(await self.call(port, tuple(A('select'), 'select $1::text is null', [A('null')])))
    await self.call(port, A('disconnect'))
    return out
  })
  const out = (await result) as Term[]
  eq(out[0], ok([[Buffer.from('n'), Buffer.from('z'), Buffer.from('b'), Buffer.from('t')], [Buffer.from('1'), A('null'), Buffer.from([0, 255]), Buffer.from('é')]]))
  eq(out[1], ok(A('null')))
  eq(out[2], ok(1))
  eq(out[3], ok([[Buffer.from('id'), Buffer.from('length'), Buffer.from('data')], [Buffer.from('7'), Buffer.from('200000'), big]]))
  eq(out[4], ok(1))
  eq(out[5], ok([[Buffer.from('?column?')], [Buffer.from('t')]]))
  rt.send(proc.pid, A('stop'))
})

test('bad session requests answer {error, Msg}; the session keeps serving', async () => {
  const { proc, result } = owner(async (self) => {
    const r = (await self.call('some_driver_01', tuple(A('pg_connect'), pgUrl, []))) as Tuple
    const port = r.get(1) as Pid
    const out: Term[] = []
    out.push(await self.call(port, tuple(A('select'), 42)))
    out.push(await self.call(port, tuple(A('select'), 'x'.repeat((1 << 20) + 1))))
    out.push(await self.call(port, A('bogus')))
    out.push(await self.call(port, tuple(A('select'), 'select $1', [tuple(1, 2)])))
    out.push(await self.call(port, tuple(A('select'), 'select 1')))
    out.push(await self.call(port, tuple(A('select'), '')))
    await self.call(port, A('disconnect'))
    return out
  })
  const out = (await result) as Term[]
  for (const r of out.slice(0, 4)) assert.ok(r instanceof Tuple && isAtom(r.get(0), 'error'), show(r))
  assert.match(String((out[1] as Tuple).get(1)), /too large/)
  eq(out[4], ok([['?column?'], ['1']]))
  eq(out[5], tuple(A('error'), []))
  rt.send(proc.pid, A('stop'))
})

test('every session started here has ended', async () => {
  await eventually(() => drivers.stats().every((s) => s.sessions === 0), 'the live session count to reach 0')
})

test.run()
