// The pg-based session against the real libpq: the same connection strings and queries through
// libpq (a small C program, the way the seed's pg_sync encodes results) and through ts-cnode's
// connectPg + TermQuery, compared byte for byte: values, column names, command counts, error texts.
import { execFile } from 'node:child_process'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type pg from 'pg'
import { Tuple, atom, isAtom, type Term } from '../src/etf/terms.js'
import { parseConninfo } from '../src/drivers/conninfo.js'
import { PgConnectError, connectPg } from '../src/drivers/pg-connect.js'
import { SEED_MODE, TermQuery, paramValues } from '../src/drivers/pg-result.js'
import { MissingToolError, cleanup, freePort, pgUrl, repoRoot, requirePostgres, tempDir } from './harness.js'

const execFileP = promisify(execFile)
let oracle = ''

test.before(async () => {
  await requirePostgres()
  const out = path.join(tempDir('ts-cnode-libpq-'), 'libpq_oracle')
  try {
    await execFileP('gcc', [
      '-o', out, path.join(repoRoot, 'integration', 'c', 'libpq_oracle.c'),
      '-I/usr/include/postgresql', '-lpq',
    ])
  } catch (e) {
    throw new MissingToolError(
      `cannot build the libpq reference program (needs gcc and libpq-dev: apt-get install gcc libpq-dev): ${(e as Error).message}`,
    )
  }
  oracle = out
})

test.after(cleanup)

async function viaLibpq(conninfo: string, steps: string[]): Promise<string[]> {
  const { stdout } = await execFileP(oracle, [conninfo, ...steps], { maxBuffer: 64 << 20 })
  return stdout.split('\n').filter((l) => l !== '')
}

const hex = (t: Term): string => {
  if (Array.isArray(t) && t.length === 0) return ''
  if (typeof t === 'string') return Buffer.from(t, 'latin1').toString('hex')
  if (Array.isArray(t)) return Buffer.from(t as number[]).toString('hex')
  throw new Error(`not a string: ${String(t)}`)
}

/** A seed-mode reply in the oracle's line format. */
function lines(reply: Term): string[] {
  assert.instance(reply, Tuple)
  const [tag, body] = (reply as Tuple).elements
  if (isAtom(tag, 'error')) return [`ERR ${hex(body)}`]
  assert.ok(isAtom(tag, 'ok'))
  if (Array.isArray(body) && body.length > 0 && Array.isArray(body[0])) {
    const [names, ...rows] = body as Term[][]
    return [`TUPLES ${names.map(hex).join(',')}`, ...rows.map((r) => `ROW ${r.map(hex).join(',')}`)]
  }
  return [`CMD ${hex(body)}`]
}

/**
 * One step as select/2 (PQexec) or, for "P|query|p1|...", select/3 (PQexecParams); \\N is NULL. "B|..." sends
 * the parameters as binaries (UTF-8), what an Elixir caller passes: libpq gets them as text parameters.
 */
function run(client: pg.Client, step: string): Promise<Term> {
  return new Promise((resolve) => {
    if (step.startsWith('P|') || step.startsWith('B|')) {
      const [text, ...ps] = step.slice(2).split('|')
      const asBinary = step.startsWith('B|')
      const params = paramValues(ps.map((p): Term => (p === '\\N' ? atom('null') : asBinary ? Buffer.from(p, 'utf8') : p)))
      client.query(new TermQuery(text, params, SEED_MODE, false, resolve))
    } else client.query(new TermQuery(step, undefined, SEED_MODE, false, resolve))
  })
}

async function viaTsCnode(conninfo: string, steps: string[]): Promise<string[]> {
  let client: pg.Client
  try {
    client = await connectPg(conninfo)
  } catch (e) {
    if (e instanceof PgConnectError) return [`CONNERR ${Buffer.from(e.message, 'utf8').toString('hex')}`]
    throw e
  }
  try {
    const out = ['OK']
    for (const s of steps) out.push(...lines(await run(client, s)))
    // A query that waited for a ParameterDescription stopped listening, whatever became of it.
    assert.is(client.connection.listenerCount('parameterDescription'), 0, 'parameterDescription listeners left')
    return out
  } finally {
    await client.end()
  }
}

const decodeLines = (ls: string[]) =>
  ls.map((l) => l.replace(/[0-9a-f]{2,}/g, (h) => (h.length % 2 === 0 ? JSON.stringify(Buffer.from(h, 'hex').toString('utf8')) : h)))

async function same(conninfo: string, steps: string[]): Promise<void> {
  const [want, got] = await Promise.all([viaLibpq(conninfo, steps), viaTsCnode(conninfo, steps)])
  assert.equal(decodeLines(got), decodeLines(want))
}

const QUERIES = [
  'select 1 as a, null::text as b, \'x\'::text',
  'select \'é\'::text as "é", \'日本\' as j',
  'select * from nosuch',
  'select 1/0',
  'selec 1',
  'select 1 +',
  "select\n  1, 'é',\tnosuchcol from pg_class",
  "do $$ begin raise exception 'boom' using detail='d', hint='h'; end $$",
  "do $$ begin execute 'selec 1'; end $$",
  'do $$ begin perform 1/0; end $$',
  '',
  'select 1; select 2',
  'select 1;;',
  'create temp table t (a int primary key, b bytea, c text)',
  "insert into t values (1, '\\x0102', 'one')",
  "insert into t values (2, null, 'two'), (3, '\\x', null)",
  'insert into t values (1)',
  "update t set c = 'uno' where a = 1",
  'delete from t where a = 3',
  'select * from t order by a',
  'select count(*) from t',
  'create temp table t2 as select * from t',
  "select 1.50::numeric, 1e300::float8, 'NaN'::float8, true, array[1,2], '{\"a\": 1}'::json, interval '1 day 2 hours'",
  "select '2024-01-02 03:04:05+00'::timestamptz, '2024-02-29'::date, '\\x00ff'::bytea",
  "select repeat('x', 100000) as big",
  "select 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' || nosuch",
  "select 'ありがとうございますありがとうございますありがとうございます' || nosuch || 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'",
  'begin',
  'select 1/0',
  'select 1',
  'rollback',
  'select 1 where false',
  'select',
  'P|select $1::int + 1 as n|41',
  'P|select $1::text is null|\\N',
  'P|select nosuch($1)|1',
  'P|insert into t values ($1, null, $2)|10|ten',
  'P|select c from t where a = $1|10',
  "P|select 1; select 2",
  // Binaries as parameters are their text, as PQexecParams's text parameters (bytea aside, which takes them as
  // they are and so differs from libpq on purpose).
  'B|select $1::int + 1 as n, $2::float8 * 2, $3::bool, $4::jsonb, $5::numeric|41|2.5|f|{"a": [1, 2]}|1.50',
  'B|select $1::text, $2::varchar, length($1), $3::uuid|héllo 日本|v|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  'B|select $1::text is null, $2|\\N|untyped',
  'B|insert into t values ($1, null, $2)|11|eleven',
  'B|select a, c from t where a = $1|11',
  'B|select $1::int|abc',
  'B|select $1::int, $2::int|1',
  'B|selec $1|x',
  'B|select nosuch($1)|1',
  'B|select $1::date, $2::timestamptz, $3::interval, $4::int[]|2024-02-29|2024-01-02 03:04:05+00|1 day|{1,2}',
  'select 1',
]

test('query results and error texts match libpq byte for byte', async () => {
  await same(pgUrl, QUERIES)
})

test('a backend terminated during a query, and the queries after it', async () => {
  await same(pgUrl, ['select pg_terminate_backend(pg_backend_pid())', 'select 1', 'P|select $1::int|2'])
})

test('connection failures read as libpq reports them', async () => {
  const given = parseConninfo(pgUrl)
  const host = given.get('host') ?? '127.0.0.1'
  const port = given.get('port') ?? '5432'
  const user = given.get('user') ?? 'postgres'
  const free = await freePort()
  for (const conninfo of [
    `host=${host} port=${free} user=${user}`,
    `host=${host} port=${port} user=${user} dbname=nope_no_such_db`,
    `host=${host} port=${port} user=nouser_no_such_role dbname=test`,
    `host=${host} port=${port} user=${user} replication=x`,
    'host=no.such.host.invalid',
    `port=${free}`,
    'host=127.0.0.1 port=abc',
    'host=a,b,c port=1,2',
    'host=127.0.0.1 sslmode=foo',
    'host',
    'foo=bar',
    "host='abc",
    'postgres://h/d?foo=1',
    'postgres://[::1',
    `host=${host} port=${port} user=${user} dbname=test connect_timeout=x`,
    `host=${host},${host} port=${free},${port} user=${user} dbname=test`,
  ]) {
    const [want, got] = await Promise.all([viaLibpq(conninfo, []), viaTsCnode(conninfo, [])])
    assert.equal(decodeLines(got), decodeLines(want), conninfo)
  }
})

test.run()
