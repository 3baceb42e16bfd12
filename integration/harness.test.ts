// The harness itself: a private epmd, two erl nodes that find each other through it, eval and cleanup.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Epmd, ErlNode, ErlEvalError, cleanup, shortHost } from './harness.js'

test.after(cleanup)

test('two erl nodes on a private epmd ping each other; eval reports values and errors', async () => {
  const epmd = await Epmd.start()
  assert.is.not(epmd.port, 4369)
  const [a, b] = await Promise.all([
    ErlNode.start({ name: 'harness_a', epmdPort: epmd.port }),
    ErlNode.start({ name: 'harness_b', epmdPort: epmd.port }),
  ])
  assert.is(a.nodeName, `harness_a@${shortHost}`)
  assert.is(await a.eval(`net_adm:ping('${b.nodeName}')`), 'pong')
  assert.match(await epmd.names(), /name harness_b at port \d+/)
  assert.is(await a.eval('X = 20, X * 2 + 2'), '42')
  const bin = await a.evalBinary('{ok, <<1,2,3>>}')
  assert.is(bin.toString('hex'), '836802640002' + '6f6b' + '6d00000003010203')
  try {
    await a.eval('erlang:error(boom)')
    assert.unreachable('eval of a raising expression resolved')
  } catch (e) {
    assert.instance(e, ErlEvalError)
    assert.match((e as Error).message, /boom/)
  }
  await a.stop()
  await b.kill()
  // stop() closes stdin and the agent halts with 0 (a kill would give null); kill() is SIGKILL.
  assert.is(await a.exited, 0)
  assert.is(b.proc.signalCode, 'SIGKILL')
  await epmd.stop()
})

test.run()
