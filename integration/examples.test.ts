// The two embedding examples, run as a user runs them, with a real erl on the other side.
import { spawn, type ChildProcess } from 'node:child_process'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Epmd, ErlNode, cleanup, compileErlang, eventually, repoRoot, shortHost } from './harness.js'

test.after(cleanup)

const COOKIE = 'examples_cookie'

function runExample(file: string, args: string[], env: Record<string, string>): { proc: ChildProcess; out: () => string } {
  let out = ''
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'examples', file), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ERLANG_COOKIE: COOKIE, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (out += d))
  return { proc, out: () => out }
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', r)))

test('counter-service: Erlang calls and casts a TypeScript gen_server', async () => {
  const epmd = await Epmd.start()
  const ex = runExample('counter-service.ts', [], { ERL_EPMD_PORT: String(epmd.port), NODE_NAME: 'counter_ts' })
  await eventually(() => /counter service ready/.test(ex.out()), 'the counter service to start', 30_000)
  const erl = await ErlNode.start({ name: 'counter_client', epmdPort: epmd.port, cookie: COOKIE })
  const srv = `{counter, 'counter_ts@${shortHost}'}`
  assert.is(await erl.eval(`gen_server:call(${srv}, {add, 5})`), '5')
  assert.is(await erl.eval(`gen_server:call(${srv}, {add, 2})`), '7')
  assert.is(await erl.eval(`gen_server:cast(${srv}, reset), gen_server:call(${srv}, get)`), '0')
  assert.is(await erl.eval(`gen_server:call(${srv}, what)`), '{error,unknown_request}')
  ex.proc.kill('SIGTERM')
  assert.is(await exited(ex.proc), 0, ex.out())
})

test('call-erlang: TypeScript calls an Erlang gen_server and erpc', async () => {
  const epmd = await Epmd.start()
  const beams = await compileErlang([path.join(repoRoot, 'examples', 'kv_server.erl')])
  const erl = await ErlNode.start({ name: 'kv', epmdPort: epmd.port, cookie: COOKIE, codePath: [beams] })
  assert.match(await erl.eval('{ok, Pid} = kv_server:start(), unlink(Pid), ok'), 'ok')
  const ex = runExample('call-erlang.ts', [erl.nodeName], { ERL_EPMD_PORT: String(epmd.port), NODE_NAME: 'kv_client' })
  assert.is(await exited(ex.proc), 0, ex.out())
  const out = ex.out()
  assert.match(out, 'ping -> pong', out)
  assert.match(out, 'get(answer) -> {ok,42}')
  assert.match(out, 'keys -> [answer]')
  assert.match(out, 'erpc lists:seq(1, 5) -> [1,2,3,4,5]')
  assert.match(out, 'call to an unregistered name -> noproc')
  assert.is(await erl.eval('gen_server:call(kv, {get, language})'), 'error')
})

test.run()
