// The main job as a user meets it: started from the command line, a real erl types the printed first
// calls, and a shutdown leaves no EPMD registration and no Postgres connection behind.
import { spawn, type ChildProcess } from 'node:child_process'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import pg from 'pg'
import { Epmd, ErlNode, cleanup, eventually, freePort, pgUrl, repoRoot, requirePostgres, sleep } from './harness.js'
import { checkDb, parseArgs, UsageError, withoutPassword } from '../src/cli.js'

const groups: number[] = []
test.after(async () => {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL')
    } catch {
      // the group is gone: nothing was left behind
    }
  }
  await cleanup()
})

/** `npm start -- args` as a user types it, in a process group of its own (so that whatever it leaves
 *  running can be found and killed after the test). */
function startCli(args: string[]): { proc: ChildProcess; out: () => string } {
  let out = ''
  const proc = spawn('npm', ['start', '--silent', '--', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  groups.push(proc.pid!)
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
  for (const port of ['', '1e3', '0x10', '-1', '80.5', '70000'])
    assert.throws(() => parseArgs(['--port', port], {}), (e: unknown) => e instanceof UsageError, `--port '${port}'`)
  assert.is(parseArgs(['--port', '4370'], {}).port, 4370)
  assert.is(withoutPassword('postgres://u:s3cret@h:5432/db?x=1'), 'postgres://u:PASSWORD@h:5432/db?x=1')
  assert.is(withoutPassword('postgresql://u@h/db'), 'postgresql://u@h/db')
  assert.is(withoutPassword('postgresql://u@h/db?sslmode=require&password=s3cret'), 'postgresql://u@h/db?sslmode=require&password=PASSWORD')
  assert.is(withoutPassword("host=db user=u password=s3cret dbname=x"), 'host=db user=u password=PASSWORD dbname=x')
  assert.is(withoutPassword("password = 's3 c\\'ret' host=db"), 'password = PASSWORD host=db')
  assert.throws(() => parseArgs(['--db', 'none', '--db-dir', '/tmp/x'], {}), (e: unknown) => e instanceof UsageError)
  assert.throws(() => parseArgs(['-sname', 'x@127.0.0.1'], {}), (e: unknown) => e instanceof UsageError && /use -name/.test((e as Error).message))
  assert.is(parseArgs(['-name', 'x@127.0.0.1'], {}).name, 'x@127.0.0.1')
})

test('the --db database is tried once at start: a warning when it does not answer, with no password shown', async () => {
  await requirePostgres()
  const lines: string[] = []
  const log = { debug() {}, info: (m: string) => void lines.push(`info: ${m}`), warn: (m: string) => void lines.push(`warn: ${m}`), error: (m: string) => void lines.push(`error: ${m}`) }
  assert.is(await checkDb(pgUrl, log), true)
  assert.ok(lines.some((l) => l.startsWith('info: the --db database answers')), lines.join('\n'))
  lines.length = 0
  const port = await freePort()
  assert.is(await checkDb(`postgres://postgres:hunter2@127.0.0.1:${port}/test`, log), false)
  const warn = lines.find((l) => l.startsWith('warn: the --db database does not answer now'))
  assert.ok(warn && /Connection refused/.test(warn) && warn.includes(':PASSWORD@') && !warn.includes('hunter2'), lines.join('\n'))
})

test('a SIGTERM while the node is still starting stops it cleanly once started (not lost, not a kill)', async () => {
  const epmd = await Epmd.start()
  let out = ''
  // The embedded database takes a second or two to start: the signal lands in that window.
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'cli.ts'), '-sname', 'early', '-setcookie', 'c', '--epmd-port', String(epmd.port)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<[number | null, string | null]>((r) => proc.once('exit', (c, sig) => r([c, sig])))
  try {
    await sleep(700)
    assert.not.match(out, /is up/, 'still starting when signalled')
    proc.kill('SIGTERM')
    assert.equal(await exited, [0, null], out)
    assert.match(out, /node early@\S+ stopped/)
    assert.not.match(await epmd.names(), /name early /)
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  }
})

test('npm start as a user runs it: erl types the printed calls, no secret is printed; SIGTERM to npm alone leaves nothing behind', async () => {
  await requirePostgres()
  const epmd = await Epmd.start()
  const cookie = 'cli_test_cookie'
  const app = `ts_cnode_cli_${process.pid}`
  const db = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}application_name=${app}`
  // A password in the URL (trust auth ignores it) must not be printed.
  const secret = 'pw_not_to_print'
  const dbWithPassword = db.replace(/^(postgres(?:ql)?:\/\/[^:@/?#]*)(?::[^@/?#]*)?@/, `$1:${secret}@`)
  assert.ok(dbWithPassword.includes(secret), `a user in ${db}`)
  const cli = startCli(['-sname', 'tsnode', '-setcookie', cookie, '--epmd-port', String(epmd.port), '--db', dbWithPassword, '--log-level', 'info'])
  // npm start builds (tsc) first.
  const printed: string = await eventually(() => (/Ctrl-C stops the node/.test(cli.out()) ? cli.out() : ''), 'the CLI to print its instructions', 120_000)
  assert.not.ok(printed.includes(cookie), printed)
  assert.not.ok(printed.includes(secret), printed)
  // The printed command line and calls, taken from the output rather than assumed (the secrets put back).
  const erlLine = /ERL_EPMD_PORT=(\d+) erl -sname demo -setcookie "\$COOKIE" -pa (\S+)/.exec(printed)
  assert.ok(erlLine, printed)
  assert.is(Number(erlLine![1]), epmd.port)
  const ping = /1> (net_adm:ping\('[^']+'\))\./.exec(printed)![1]
  const connect = /2> \{ok, P\} = (pg_sync:connect\("[^"]+"\))\./.exec(printed)![1].replace('PASSWORD', secret)
  const select = /3> (pg_sync:select\(P, "[^"]+"\))\./.exec(printed)![1]
  const erl = await ErlNode.start({ name: 'demo', epmdPort: epmd.port, cookie, codePath: [erlLine![2]] })
  assert.is(await erl.eval(ping), 'pong')
  // The owner of the session stays alive until the node shuts down.
  const owned = `Self = self(), spawn(fun() -> {ok, P} = ${connect}, Self ! {r, ${select}}, receive stop -> ok end end), receive {r, R} -> R end`
  assert.is(await erl.eval(owned), '{ok,[["answer"],["42"]]}')
  assert.is(await erl.eval('next_perm:next_perm([1,2,3])'), '[1,3,2]')
  assert.is(await backends(app), 1, 'the session holds one Postgres connection')
  assert.match(await epmd.names(), /name tsnode at port/)
  // A second session busy with a long select when the node stops: it is cancelled, not run to its end.
  await erl.eval(`spawn(fun() -> {ok, P} = ${connect}, pg_sync:select(P, "select pg_sleep(60)") end), ok`)
  await eventually(async () => (await backends(app)) === 2, 'the sleeping session')

  // What a supervisor does: SIGTERM to the process it started (npm), not to its process group.
  cli.proc.kill('SIGTERM')
  const code = await new Promise<number | null>((r) => cli.proc.once('exit', (c) => r(c)))
  assert.is(code, 0, cli.out())
  assert.match(cli.out(), /node tsnode@\S+ stopped/)
  assert.not.match(await epmd.names(), /name tsnode /)
  await eventually(async () => (await backends(app)) === 0, 'the session backend to disappear from pg_stat_activity')
  await erl.stop()
})

test.run()
