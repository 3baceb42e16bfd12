// The ts-cnode target of the benchmark, run as its own OS process so its RSS can be read from /proc.
// It serves what the Erlang bench client drives, written as a user would with the Node API:
//   echo      a process that answers {Pid, Payload} with Payload
//   bench_gs  a gen_server that replies to every call with the request
//   bench:spawn_idle(N) / bench:stop_idle()   N processes idle in receive (the memory figure)
// Environment: TS_BENCH_NAME (alive or alive@host), TS_BENCH_COOKIE, ERL_EPMD_PORT.
// Prints "READY <node>" once registered with EPMD; stops on SIGTERM, SIGINT or end of stdin.
import { Node } from '../src/node.js'
import { atom, isTuple, Pid, type Term } from '../src/etf/terms.js'
import type { Process } from '../src/runtime/index.js'

const name = process.env.TS_BENCH_NAME ?? 'ts_bench'
const cookie = process.env.TS_BENCH_COOKIE ?? 'ts_cnode_bench_cookie'
const epmdPort = Number(process.env.ERL_EPMD_PORT ?? 4369)

const node = new Node({ name, cookie, epmdPort, embeddedEpmd: false })
await node.start()

node.spawn(
  async (self) => {
    for (;;) {
      const msg = await self.receive()
      if (isTuple(msg, 2) && msg.elements[0] instanceof Pid) self.send(msg.elements[0], msg.elements[1])
    }
  },
  { name: 'echo' },
)

await node.startGenServer<null>(
  {
    init: () => null,
    handleCall: (request) => ({ reply: request }),
  },
  { name: 'bench_gs' },
)

const STOP = atom('stop')
let idle: Process[] = []

node.registerFunction('bench', 'spawn_idle', ([n]) => {
  const count = Number(n)
  for (let i = 0; i < count; i++) idle.push(node.spawn((self) => self.receive((m: Term) => m === STOP)))
  return atom('ok')
})

node.registerFunction('bench', 'stop_idle', () => {
  for (const p of idle) if (p.alive) node.send(p.pid, STOP)
  idle = []
  return atom('ok')
})

process.stdout.write(`READY ${node.name.name}\n`)

let stopping = false
async function stop(): Promise<void> {
  if (stopping) return
  stopping = true
  await node.stop().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.resume()
