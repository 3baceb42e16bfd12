// The benchmark compares like with like only if every target answers exactly what it was sent: these tests
// check the echo C-node, the ts echo node and the BEAM anchors behave (no timing is asserted).
//   npx uvu -r tsx bench .test.ts$
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Epmd, ErlNode, cleanup, eventually, shortHost } from '../integration/harness.js'
import { buildCnode, buildErlang, buildTsNode } from './build.js'
import { stopAllTargets, Target } from './targets.js'

const COOKIE = 'ts_cnode_bench_test_cookie'
let client: ErlNode
let beam: ErlNode
let ei: Target
let ts: Target
let epmd: Epmd

test.before(async () => {
  const ebin = await buildErlang()
  if (!ebin.ok) throw new Error(ebin.reason)
  const cnode = await buildCnode()
  if (!cnode.ok) throw new Error(cnode.reason)
  const tsBuild = await buildTsNode()
  epmd = await Epmd.start()
  const erl = (name: string) => ErlNode.start({ name, epmdPort: epmd.port, cookie: COOKIE, codePath: [ebin.value] })
  ;[client, beam] = await Promise.all([erl('bench_test_client'), erl('bench_test_beam')])
  await beam.eval('bench_client:start_echo(), bench_client:start_gen_server()')
  const env = { ERL_EPMD_PORT: String(epmd.port) }
  ei = await Target.start('echo C-node', cnode.value, ['bench_test_ei', shortHost, COOKIE], env)
  ts = await Target.start('ts echo node', process.execPath, [...tsBuild.nodeArgs, tsBuild.script], {
    ...env,
    TS_BENCH_NAME: `bench_test_ts@${shortHost}`,
    TS_BENCH_COOKIE: COOKIE,
  })
})

test.after(async () => {
  await stopAllTargets()
  await cleanup()
})

// Terms of every kind, the bench's shapes among them; the reply must be =:= to what was sent.
const TERMS = [
  'bench_client:payload(small_tuple)',
  'bench_client:payload(bin_1k)',
  'bench_client:payload(map_100)',
  'bench_client:payload(bin_1m)',
  '[1.0, 1, -1, 16#7fffffff, -16#80000000, 1 bsl 70, -(1 bsl 70), 3.14]',
  "{[], <<>>, <<1:3>>, [a | b], \"chars\", 'ünïcødé', #{{a, 1} => [x], <<\"k\">> => #{}}}",
  '{self(), make_ref(), fun lists:map/2, lists:seq(1, 1000)}',
  'list_to_tuple(lists:seq(1, 300))',
  'binary:copy(<<"z">>, 200000)',
]

const echoesExactly = (target: () => string) => async () => {
  const node = target()
  for (const t of TERMS) {
    const r = await client.eval(
      `P = ${t}, {echo, '${node}'} ! {self(), P}, receive R -> R =:= P after 10000 -> timeout end`,
    )
    assert.is(r, 'true', `${node} did not echo ${t} exactly: ${r}`)
  }
}

test('the C-node echoes every term exactly', echoesExactly(() => ei.node))
test('the ts echo node echoes every term exactly', echoesExactly(() => ts.node))
test('the BEAM echo anchor echoes every term exactly', echoesExactly(() => beam.nodeName))

test('the C-node ignores terms that are not {Pid, Payload} and keeps serving', async () => {
  const r = await client.eval(
    `D = {echo, '${ei.node}'}, D ! hello, D ! {1, 2, 3}, D ! {not_a_pid, x}, ` +
      `D ! {self(), still_here}, receive still_here -> ok after 5000 -> timeout end`,
  )
  assert.is(r, 'ok')
})

test('the C-node serves several client nodes at once', async () => {
  const second = await ErlNode.start({
    name: 'bench_test_client2',
    epmdPort: epmd.port,
    cookie: COOKIE,
  })
  const expr = (tag: string) =>
    `D = {echo, '${ei.node}'}, [begin D ! {self(), {${tag}, I}}, receive {${tag}, I} -> ok end end || I <- lists:seq(1, 200)], done`
  const [a, b] = await Promise.all([client.eval(expr('one')), second.eval(expr('two'))])
  assert.is(a, 'done')
  assert.is(b, 'done')
  await second.stop()
})

test('bench_client:echo counts round trips against each target', async () => {
  for (const node of [ei.node, ts.node, beam.nodeName]) {
    const r = await client.eval(`bench_client:echo('${node}', small_tuple, 4, 0, 100)`)
    const m = /^\{(\d+),(\d+)\}$/.exec(r)
    assert.ok(m, r)
    assert.ok(Number(m![1]) > 0, `no round trips against ${node}: ${r}`)
  }
})

test('bench_gs answers gen_server:call with the request, on the ts node and on the BEAM', async () => {
  for (const node of [ts.node, beam.nodeName]) {
    const r = await client.eval(`gen_server:call({bench_gs, '${node}'}, {ping, [1, 2], <<"x">>}, 5000)`)
    assert.is(r, '{ping,[1,2],<<"x">>}')
  }
})

test('the ts node spawns and stops idle processes on request', async () => {
  const alive = async () => Number(await client.eval(`erpc:call('${ts.node}', bench, idle_alive, [])`))
  assert.is(await client.eval(`erpc:call('${ts.node}', bench, spawn_idle, [500])`), 'ok')
  assert.is(await alive(), 500)
  assert.is(await client.eval(`erpc:call('${ts.node}', bench, stop_idle, [])`), 'ok')
  await eventually(async () => (await alive()) === 0, 'the idle processes to stop')
})

test('the ts node counts what it echoed', async () => {
  const echoed = async () => Number(await client.eval(`erpc:call('${ts.node}', bench, echoed, [])`))
  const before = await echoed()
  await client.eval(`[begin {echo, '${ts.node}'} ! {self(), I}, receive I -> ok end end || I <- lists:seq(1, 25)]`)
  assert.is((await echoed()) - before, 25)
})

test.run()
