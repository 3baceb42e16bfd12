// A TypeScript client that calls an Erlang gen_server (examples/kv_server.erl) and runs an erpc call.
//
//   erlc examples/kv_server.erl && erl -sname kv -eval 'kv_server:start()'
//   npx tsx examples/call-erlang.ts kv@HOST
//
// Environment: NODE_NAME (default tsclient), ERLANG_COOKIE, ERL_EPMD_PORT.
import { Node, atom, tuple, NoProcError, formatTerm } from '../src/index.js'

const peer = process.argv[2]
if (!peer) {
  console.error('usage: call-erlang.ts ErlangNode   (a node running kv_server:start())')
  process.exit(2)
}
const node = new Node({ name: process.env.NODE_NAME ?? 'tsclient', cookie: process.env.ERLANG_COOKIE })
await node.start()
try {
  const kv = { name: 'kv', node: peer }
  const show = (what: string, v: unknown) => console.log(`${what} -> ${formatTerm(v)}`)
  show('ping', atom(await node.ping(peer)))
  show('put(language, <<"erlang">>)', await node.call(kv, tuple(atom('put'), atom('language'), Buffer.from('erlang')), { timeout: 5000 }))
  show('put(answer, 42)', await node.call(kv, tuple(atom('put'), atom('answer'), 42), { timeout: 5000 }))
  show('get(answer)', await node.call(kv, tuple(atom('get'), atom('answer')), { timeout: 5000 }))
  node.cast(kv, tuple(atom('delete'), atom('language')))
  show('keys', await node.call(kv, atom('keys'), { timeout: 5000 }))
  show('erpc lists:seq(1, 5)', await node.rpc(peer, 'lists', 'seq', [1, 5], { timeout: 5000 }))
  try {
    await node.call({ name: 'no_such_server', node: peer }, atom('hello'), { timeout: 5000 })
  } catch (e) {
    show('call to an unregistered name', e instanceof NoProcError ? atom('noproc') : atom('unexpected'))
  }
} finally {
  await node.stop()
}
