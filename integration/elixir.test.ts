// Elixir code against TypeScript processes: a real `elixir` node (Debian's elixir package, which
// scripts/provision.sh installs) runs a script that uses GenServer.call/cast, send/receive, Process.monitor
// and :erpc.call on a ts-cnode, with Elixir's own terms: maps with string (binary) keys, structs, keyword
// lists, charlists. Skipped, saying why, when there is no `elixir` and it cannot be installed.
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { atom, canonicalKey, isTuple, Pid, type Term } from '../src/etf/terms.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import { startDrivers, type Drivers } from '../src/drivers/driver.js'
import { Epmd, cleanup, compileShippedModules, pgUrl, requirePostgres, shortHost, tempDir, track } from './harness.js'

const COOKIE = 'ts_cnode_test_cookie'
const TS = `ts_elixir@${shortHost}`
const haveElixir = spawnSync('elixir', ['--version'], { stdio: 'ignore' }).status === 0
let epmd: Epmd
let node: Node
let drivers: Drivers | undefined

test.before(async () => {
  if (!haveElixir) return
  epmd = await Epmd.start()
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  await node.start()
  // A key-value server keyed by Erlang term (Elixir's "name" arrives as a binary: a new Buffer each time).
  await node.startGenServer<Map<string, Term>>(
    {
      init: () => new Map(),
      handleCall: (req, _from, kv) => {
        if (isTuple(req, 3) && req.get(0) === atom('put')) {
          kv.set(canonicalKey(req.get(1)), req.get(2))
          return { reply: atom('ok') }
        }
        if (isTuple(req, 2) && req.get(0) === atom('get')) return { reply: kv.get(canonicalKey(req.get(1))) ?? atom('nil') }
        if (isTuple(req, 2) && req.get(0) === atom('echo')) return { reply: req.get(1) }
        return { reply: atom('unknown') }
      },
      handleCast: (req) => (req === atom('stop') ? { stop: atom('normal') } : undefined),
    },
    { name: 'ts_kv' },
  )
  node.spawn(
    async (self) => {
      for (;;) {
        const m = await self.receive()
        if (isTuple(m, 2) && m.get(0) instanceof Pid) self.send(m.get(0) as Pid, m.get(1))
      }
    },
    { name: 'ts_echo' },
  )
  node.registerFunction('ts_math', 'add', ([a, b]) => (a as number) + (b as number))
})

test.after(async () => {
  await drivers?.stop()
  await node?.stop()
  await cleanup()
})

const SCRIPT = `
ts = String.to_atom(System.fetch_env!("TS_NODE"))
true = Node.connect(ts)
kv = {:ts_kv, ts}

# GenServer.call with Elixir terms: string keys are binaries, a struct is a map with __struct__.
:ok = GenServer.call(kv, {:put, "name", %{"id" => 1, "tags" => ["a", "b"], "score" => 2.5}})
%{"id" => 1, "tags" => ["a", "b"], "score" => 2.5} = GenServer.call(kv, {:get, "name"})
nil = GenServer.call(kv, {:get, "other"})
uri = URI.parse("https://example.com:8443/path?q=1")
^uri = GenServer.call(kv, {:echo, uri})
opts = [timeout: 5000, mode: :fast, tag: {1, 2.0, <<1, 2, 3>>}]
^opts = GenServer.call(kv, {:echo, opts})
big = 12345678901234567890123
{^big, -1.0e300, ~c"chars", "héllo", :"ünïcode"} = GenServer.call(kv, {:echo, {big, -1.0e300, ~c"chars", "héllo", :"ünïcode"}})

# send / receive.
send({:ts_echo, ts}, {self(), %{key: :value, list: [1, 2.5, "bin"]}})
receive do
  %{key: :value, list: [1, 2.5, "bin"]} -> :ok
after
  5000 -> exit(:no_echo)
end

# :erpc.call into a function registered in TypeScript.
42 = :erpc.call(ts, :ts_math, :add, [40, 2])

# Process.monitor on a TypeScript gen_server, which then stops.
ref = Process.monitor(kv)
GenServer.cast(kv, :stop)
receive do
  {:DOWN, ^ref, :process, _, :normal} -> :ok
after
  5000 -> exit(:no_down)
end
{:noproc, _} =
  try do
    GenServer.call(kv, {:get, "name"}, 1000)
  catch
    :exit, reason -> reason
  end
IO.puts("ELIXIR_OK")
`

// The Erlang driver modules called from Elixir as an Elixir user writes it: strings (binaries) and nil as
// parameters, a map where a list belongs.
const PG_SCRIPT = String.raw`
url = System.fetch_env!("PG_URL")
{:ok, c} = :pg_sync.connect(url)
{:ok, []} = :pg_sync.select(c, "create temp table u (id int, name text, tag text, score float8, ok bool)")
{:ok, '1'} = :pg_sync.select(c, "insert into u values ($1, $2, $3, $4, $5)", ["1000", "ann", nil, "2.5", "f"])
{:ok, [['id', 'name', 'tag', 'score', 'ok'], ['1000', 'ann', [], '2.5', 'f']]} = :pg_sync.select(c, "select * from u")
{:ok, [['?column?'], ['t']]} = :pg_sync.select(c, "select $1::jsonb = '{\"a\": 1}'", [~s({"a": 1})])
{:error, msg} = :pg_sync.select(c, "select $1", %{host: "x"})
"ts-cnode: parameters must be a list, got \#{host => <<\"x\">>}\n" = List.to_string(msg)
:ok = :pg_sync.disconnect(c)
{:ok, a} = :pg_async.connect(url, [:binary])
{:ok, [["n"], ["1001"]]} = :pg_async.select(a, "select $1::int + 1 as n", ["1000"])
{:ok, [["bytea"], [<<0, 255, 1>>]]} = :pg_async.select(a, "select $1::bytea", [<<0, 255, 1>>])
:ok = :pg_async.disconnect(a)
IO.puts("ELIXIR_PG_OK")
`

if (!haveElixir) console.log("elixir.test.ts: skipped: no `elixir` here (scripts/provision.sh installs Debian's elixir when run as root)")
// Counted as skipped, not passed, when there is no elixir.
const elixirTest = haveElixir ? test : test.skip

/** Runs `elixir args` against this test's EPMD (killed after 60 s): its exit code and everything it printed. */
async function runElixir(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = track(spawn('elixir', args, { env: { ...process.env, ERL_EPMD_PORT: String(epmd.port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] }))
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('exit', (c) => {
      clearTimeout(t)
      resolve(c)
    })
  })
  return { code, out }
}

elixirTest('Elixir: GenServer.call/cast, send, :erpc.call and Process.monitor on TypeScript processes', async () => {
  const dir = tempDir('ts-cnode-elixir-')
  const script = path.join(dir, 'client.exs')
  // ~c sigils are Elixir 1.15+: Debian's 1.14 writes charlists with single quotes.
  writeFileSync(script, SCRIPT.replaceAll('~c"chars"', "'chars'"))
  const { code, out } = await runElixir(['--sname', `elixir_client@${shortHost}`, '--cookie', COOKIE, script], { TS_NODE: TS })
  assert.ok(out.includes('ELIXIR_OK'), `elixir exited ${code}:\n${out}`)
  assert.is(code, 0)
  assert.ok(node.runtime.whereis(atom('ts_kv')) === undefined, 'the gen_server stopped on the cast')
})

elixirTest('Elixir: pg_sync and pg_async with Elixir strings and nil as parameters ("1000" is 1000 for an int)', async () => {
  await requirePostgres()
  drivers = await startDrivers(node, { count: 16 })
  const beams = await compileShippedModules()
  const dir = tempDir('ts-cnode-elixir-pg-')
  const script = path.join(dir, 'pg_client.exs')
  writeFileSync(script, PG_SCRIPT)
  const { code, out } = await runElixir(['--sname', `elixir_pg@${shortHost}`, '--cookie', COOKIE, '-pa', beams, script], {
    TS_CNODE_NODE: TS,
    PG_URL: pgUrl,
  })
  assert.ok(out.includes('ELIXIR_PG_OK'), `elixir exited ${code}:\n${out}`)
  assert.is(code, 0)
})

test.run()
