// A TypeScript service that Erlang calls with gen_server:call / gen_server:cast.
//
//   npx tsx examples/counter-service.ts            (node name tsnode, cookie from ~/.erlang.cookie)
//   erl -sname demo
//   1> gen_server:call({counter, 'tsnode@HOST'}, {add, 5}).   → 5
//   2> gen_server:call({counter, 'tsnode@HOST'}, get).        → 5
//   3> gen_server:cast({counter, 'tsnode@HOST'}, reset).      → ok
//
// Environment: NODE_NAME (default tsnode), ERLANG_COOKIE, ERL_EPMD_PORT.
import { Node, atom, isTuple, isAtom, tuple, type GenServerCallbacks } from '../src/index.js'

const counter: GenServerCallbacks<number> = {
  init: () => 0,
  handleCall(request, _from, n) {
    if (isTuple(request, 2) && isAtom(request.get(0), 'add') && typeof request.get(1) === 'number') {
      const next = n + (request.get(1) as number)
      return { reply: next, state: next }
    }
    if (isAtom(request, 'get')) return { reply: n }
    return { reply: tuple(atom('error'), atom('unknown_request')) }
  },
  handleCast(request) {
    return isAtom(request, 'reset') ? { state: 0 } : {}
  },
}

const node = new Node({ name: process.env.NODE_NAME ?? 'tsnode', cookie: process.env.ERLANG_COOKIE })
await node.start()
await node.startGenServer(counter, { name: 'counter' })
console.log(`counter service ready on ${node.name.name}: gen_server:call({counter, '${node.name.name}'}, {add, 1}).`)

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void node.stop().then(() => process.exit(0)))
}
