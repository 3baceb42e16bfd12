// The main job as a user meets it: started from the command line, a real erl types the printed first
// calls, and a shutdown leaves no EPMD registration and no Postgres connection behind.
import { spawn, type ChildProcess } from 'node:child_process'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import pg from 'pg'
import { Epmd, ErlNode, cleanup, eventually, pgUrl, repoRoot, requirePostgres } from './harness.js'
import { parseArgs, UsageError } from '../src/cli.js'

test.after(cleanup)

function startCli(args: string[]): { proc: ChildProcess; out: () => string } {
  let out = ''
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'cli.ts'), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  return { proc, out: () => out }
}

async function backends(appName: string): Promise<number> {
  const c = new pg.Client(pgUrl)
  await c.connect()
  try {
    const r = await c.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [appName])
    return r.rows[0].n as number
  } finally {
    await c.end()
  }
}

test('flags mirror erl and bad ones are refused with a usage error', () => {
  const o = parseArgs(['-name', 'x@127.0.0.1', '-setcookie', 'c', '-visible', '--drivers', '4'], {})
  assert.equal([o.name, o.longNames, o.cookie, o.hidden, o.drivers], ['x@127.0.0.1', true, 'c', false, 4])
  assert.is(parseArgs([], { ERL_EPMD_PORT: '5000' }).epmdPort, 5000)
  assert.throws(() => parseArgs(['--drivers', '0'], {}), (e: unknown) => e instanceof UsageError)
  assert.throws(() => parseArgs(['--frobnicate'], {}), (e: unknown) => e instanceof UsageError)
  assert.throws(() => parseArgs(['-sname'], {}), (e: unknown) => e instanceof UsageError)
})

test('npm start as a user runs it: erl types the printed calls; SIGTERM leaves nothing behind', async () => {
  await requirePostgres()
  const epmd = await Epmd.start()
  const cookie = 'cli_test_cookie'
  const app = `ts_cnode_cli_${process.pid}`
  const db = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}application_name=${app}`
  const cli = startCli(['-sname', 'tsnode', '-setcookie', cookie, '--epmd-port', String(epmd.port), '--db', db, '--log-level', 'info'])
  const printed: string = await eventually(() => (/Ctrl-C stops the node/.test(cli.out()) ? cli.out() : ''), 'the CLI to print its instructions', 30_000)
  // The printed command line and calls, taken from the output rather than assumed.
  const erlLine = /ERL_EPMD_PORT=(\d+) erl -sname demo -setcookie '([^']+)' -pa (\S+)/.exec(printed)
  assert.ok(erlLine, printed)
  assert.is(Number(erlLine![1]), epmd.port)
  const ping = /1> (net_adm:ping\('[^']+'\))\./.exec(printed)![1]
  const connect = /2> \{ok, P\} = (pg_sync:connect\("[^"]+"\))\./.exec(printed)![1]
  const select = /3> (pg_sync:select\(P, "[^"]+"\))\./.exec(printed)![1]
  const erl = await ErlNode.start({ name: 'demo', epmdPort: epmd.port, cookie: erlLine![2], codePath: [erlLine![3]] })
  assert.is(await erl.eval(ping), 'pong')
  // The owner of the session stays alive until the node shuts down.
  const owned = `Self = self(), spawn(fun() -> {ok, P} = ${connect}, Self ! {r, ${select}}, receive stop -> ok end end), receive {r, R} -> R end`
  assert.is(await erl.eval(owned), '{ok,[["answer"],["42"]]}')
  assert.is(await erl.eval('next_perm:next_perm([1,2,3])'), '[1,3,2]')
  assert.is(await backends(app), 1, 'the session holds one Postgres connection')
  assert.match(await epmd.names(), /name tsnode at port/)

  cli.proc.kill('SIGTERM')
  const code = await new Promise<number | null>((r) => cli.proc.once('exit', (c) => r(c)))
  assert.is(code, 0, cli.out())
  assert.match(cli.out(), /node tsnode@\S+ stopped/)
  assert.not.match(await epmd.names(), /name tsnode /)
  await eventually(async () => (await backends(app)) === 0, 'the session backend to disappear from pg_stat_activity')
  await erl.stop()
})

test.run()
