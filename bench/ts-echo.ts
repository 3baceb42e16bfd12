// The ts-cnode target of the benchmark, run as its own OS process so its RSS can be read from /proc.
// It serves what the Erlang bench client drives, written as a user would with the Node API:
//   echo      a process that answers {Pid, Payload} with Payload
//   bench_gs  a gen_server that replies to every call with the request
//   bench:spawn_idle(N) / bench:stop_idle()   N processes idle in receive (the memory figure);
//   bench:idle_alive()   how many of them are alive
//   bench:echoed()   how many messages the echo process has answered and bench_gs calls it has replied to
//                    (the profile's per-message figures)
//   bench:gc()       a full V8 collection when run with --expose-gc (memory figures without stale garbage)
//   bench:clock()    process.hrtime in microseconds: the clock of a --cpu-prof profile's timestamps
// Environment: TS_BENCH_NAME (alive or alive@host), TS_BENCH_COOKIE, ERL_EPMD_PORT; TS_BENCH_FRAGMENTS=1 offers
// DFLAG_FRAGMENTS and TS_BENCH_DIRECT_READ=0 reads with 'data' events (bench/ab.ts compares such variants);
// TS_BENCH_V8_FLAGS are handed to v8.setFlagsFromString at start (e.g. --trace-gc, which NODE_OPTIONS refuses).
// Prints "READY <node>" once registered with EPMD; stops on SIGTERM, SIGINT or end of stdin.
import * as v8 from 'node:v8'
import { Node } from '../src/node.js'
import { atom, isTuple, Pid, type Term } from '../src/etf/terms.js'

if (process.env.TS_BENCH_V8_FLAGS) v8.setFlagsFromString(process.env.TS_BENCH_V8_FLAGS)
const name = process.env.TS_BENCH_NAME ?? 'ts_bench'
const cookie = process.env.TS_BENCH_COOKIE ?? 'ts_cnode_bench_cookie'
const epmdPort = Number(process.env.ERL_EPMD_PORT ?? 4369)

const node = new Node({
  name,
  cookie,
  epmdPort,
  embeddedEpmd: false,
  fragments: process.env.TS_BENCH_FRAGMENTS === '1',
  directRead: process.env.TS_BENCH_DIRECT_READ !== '0',
})
await node.start()

let echoed = 0
node.spawn(
  async (self) => {
    for (;;) {
      const msg = await self.receive()
      if (isTuple(msg, 2) && msg.elements[0] instanceof Pid) {
        self.send(msg.elements[0], msg.elements[1])
        echoed++
      }
    }
  },
  { name: 'echo' },
)

await node.startGenServer<null>(
  {
    init: () => null,
    handleCall: (request) => {
      echoed++
      return { reply: request }
    },
  },
  { name: 'bench_gs' },
)

const STOP = atom('stop')
// Only pids are kept, and only until stop_idle: holding the Process objects of dead processes would
// keep them all on the heap and slow every later collection.
let idle: Pid[] = []
let idleAlive = 0

node.registerFunction('bench', 'spawn_idle', ([n]) => {
  const count = Number(n)
  for (let i = 0; i < count; i++) {
    idleAlive++
    const p = node.spawn(async (self) => {
      try {
        await self.receive((m: Term) => m === STOP)
      } finally {
        idleAlive--
      }
    })
    idle.push(p.pid)
  }
  return atom('ok')
})

node.registerFunction('bench', 'stop_idle', () => {
  for (const pid of idle) node.send(pid, STOP)
  idle = []
  return atom('ok')
})

node.registerFunction('bench', 'idle_alive', () => idleAlive)

node.registerFunction('bench', 'echoed', () => echoed)
node.registerFunction('bench', 'gc', () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return atom('ok')
})
node.registerFunction('bench', 'clock', () => Number(process.hrtime.bigint() / 1000n))

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
