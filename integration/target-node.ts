// A ts-cnode node in its own OS process, for tests that attack it or load it: a crash is then an exit the
// test sees, and its memory is its own. Started by Target.start() (target.ts) as
//   node --import tsx integration/target-node.ts '<TargetConfig as JSON>'
// It prints `@@T ready {json}` on stdout when up, writes its log as JSON lines on stderr, and answers
// commands on stdin (`Id Command\n` → `@@T Id {json}\n`): mem (after a GC). It stops when stdin ends.
//
// Processes: ts_echo_01..NN answer {FromPid, ...} with {echo, Message} (trap_exit, so links from attackers
// cannot take them down); ts_sink drops everything.
import { Node } from '../src/node.js'
import { consoleLogger } from '../src/logger.js'
import { Pid, Tuple, atom, tuple } from '../src/etf/terms.js'

export interface TargetConfig {
  name: string
  cookie: string
  epmdPort: number
  echo?: number
  setupTime?: number
  maxFrameSize?: number
  /** Offer DFLAG_FRAGMENTS (NodeOptions.fragments). */
  fragments?: boolean
  logLevel?: 'debug' | 'info' | 'warn'
}

const cfg = JSON.parse(process.argv[2]) as TargetConfig
const log = consoleLogger(cfg.logLevel ?? 'info', 'target', 'json')
const ECHO = atom('echo')

process.on('uncaughtException', (e) => {
  // Reported, then fatal: the test sees the exit code and the text.
  process.stderr.write(`@@T uncaught ${JSON.stringify(String((e as Error)?.stack ?? e))}\n`)
  process.exit(70)
})

const node = new Node({
  name: cfg.name,
  cookie: cfg.cookie,
  epmdPort: cfg.epmdPort,
  setupTime: cfg.setupTime,
  maxFrameSize: cfg.maxFrameSize,
  fragments: cfg.fragments,
  logger: log,
})

await node.start()

for (let i = 1; i <= (cfg.echo ?? 1); i++) {
  node.spawn(
    async (self) => {
      self.trapExit = true
      for await (const m of self.mailbox) {
        if (m instanceof Tuple && m.length > 0 && m.get(0) instanceof Pid) self.send(m.get(0) as Pid, tuple(ECHO, m))
      }
    },
    { name: `ts_echo_${String(i).padStart(2, '0')}` },
  )
}
const sink = node.spawn(
  async (self) => {
    self.trapExit = true
    for await (const _ of self.mailbox) {
      // dropped
    }
  },
  { name: 'ts_sink' },
)

const gc = (globalThis as { gc?: () => void }).gc
/** Memory after full collections (two, a turn apart: external buffers are released after the first). */
const mem = async () => {
  gc?.()
  await new Promise((r) => setImmediate(r))
  gc?.()
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
}

process.stdout.write(`@@T ready ${JSON.stringify({ name: node.name.name, creation: node.creation, sink: sink.pid.id })}\n`)

let buf = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (d: string) => {
  buf += d
  let nl: number
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl)
    buf = buf.slice(nl + 1)
    const [id, cmd] = line.split(' ')
    void answer(id, cmd)
  }
})
process.stdin.on('end', () => void shutdown(0))

async function answer(id: string, cmd: string): Promise<void> {
  const r = cmd === 'mem' ? await mem() : { error: `unknown command ${cmd}` }
  process.stdout.write(`@@T ${id} ${JSON.stringify(r)}\n`)
}

let stopping = false
async function shutdown(code: number): Promise<void> {
  if (stopping) return
  stopping = true
  await node.stop()
  process.stdout.write(`@@T stopped\n`, () => process.exit(code))
}
