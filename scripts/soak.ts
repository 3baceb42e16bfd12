// `npm run soak` (tsx scripts/soak.ts): the long versions of the reliability tests, with figures.
//   1. hostile input: 100,000 fuzz cases at EPMD and the distribution port (scripts/fuzz-dist.ts) while a
//      real erl peer keeps pinging and exchanging messages with the node;
//   2. load: one million messages from 32 erl processes to 32 TypeScript processes and back;
//   3. faults, in rounds: a peer SIGKILLed mid-traffic (links, monitors, pg sessions), an erl stopped with
//      SIGSTOP while messages queue for it, EPMD killed and restarted, PostgreSQL restarted under load (a
//      private cluster; skipped with the reason when it cannot run here).
// Options: --cases N (default 100000), --messages N (default 1000000), --rounds N (default 10),
//          --seed N, --only fuzz|load|faults. Exits 1 when any check failed.
import { readFileSync } from 'node:fs'
import { cleanup } from '../integration/harness.js'
import { describeLoad, runLoad, type LoadFigures } from '../integration/load.js'
import { mib } from '../integration/fuzz/scenario.js'
import {
  FaultEnv,
  killPeerMidTraffic,
  pgRestartSkipReason,
  privateCluster,
  restartEpmd,
  restartPgUnderLoad,
  sendToStoppedPeer,
  type PrivateCluster,
} from '../integration/faults.js'
import { atom } from '../src/etf/terms.js'
import { printHostile, runHostile, type HostileFigures } from './fuzz-dist.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const num = (name: string, dflt: number) => Number(arg(name) ?? dflt)
const only = arg('only')
const out = (s: string) => process.stdout.write(s + '\n')
const note = (s: string) => process.stderr.write(s + '\n')
const problems: string[] = []

/** VmHWM of this process (the faults run their node in here). */
function ownPeakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss
}

interface FaultFigures {
  rounds: number
  injected: Record<string, number>
  passed: Record<string, number>
  skipped: string[]
  linksAndMonitorsFired: number
  sessionsClosed: number
  queuedWhileStopped: number
  rssPeak: number
}

async function runFaults(rounds: number): Promise<FaultFigures> {
  const env = await FaultEnv.start()
  const f: FaultFigures = { rounds, injected: {}, passed: {}, skipped: [], linksAndMonitorsFired: 0, sessionsClosed: 0, queuedWhileStopped: 0, rssPeak: 0 }
  const tally = (kind: string, ok: boolean, detail: string) => {
    f.injected[kind] = (f.injected[kind] ?? 0) + 1
    if (ok) f.passed[kind] = (f.passed[kind] ?? 0) + 1
    else problems.push(`${kind}: ${detail}`)
  }
  const uncaught: unknown[] = []
  const onUncaught = (e: unknown) => void uncaught.push(e)
  process.on('uncaughtException', onUncaught)
  process.on('unhandledRejection', onUncaught)
  const skipPg = pgRestartSkipReason()
  if (skipPg) f.skipped.push(`PostgreSQL restart: ${skipPg}`)
  let cluster: PrivateCluster | undefined
  try {
    if (!skipPg) cluster = await privateCluster()
    const { node } = await env.tsNode({ highWaterMark: 256 * 1024, maxQueueSize: 64 * 1024 * 1024 }, true)
    for (let r = 1; r <= rounds; r++) {
      note(`faults: round ${r}/${rounds}`)
      const k = await killPeerMidTraffic(env, node, 8)
      const fired = k.fired.filter((x) => x.exit === atom('noconnection') && x.down === atom('noconnection')).length
      f.linksAndMonitorsFired += fired * 2
      f.sessionsClosed += k.backendsBefore - k.backendsAfter
      tally('peer SIGKILL mid-traffic', fired === 8 && k.backendsBefore === 8 && k.backendsAfter === 0, JSON.stringify({ fired, before: k.backendsBefore, after: k.backendsAfter }))

      const erl = await env.erlNode(env.uname('stopped'))
      try {
        const s = await sendToStoppedPeer(env, node, erl, 768, 16 * 1024)
        f.queuedWhileStopped = Math.max(f.queuedWhileStopped, s.maxPending)
        tally('peer SIGSTOP / SIGCONT with 12 MiB queued', s.result === '{768,true}', s.result)
      } finally {
        await erl.stop()
      }

      const e = await restartEpmd(env, node)
      tally('EPMD SIGKILL and restart', e.reregistered && e.newPeerPing === 'pong' && e.oldPeerPing === 'pong', JSON.stringify(e))

      if (cluster) {
        const p = await restartPgUnderLoad(env, node, cluster, 6)
        tally(
          'PostgreSQL restart under load',
          p.workers === 6 && p.error >= 6 && p.okAfterError >= 6 && p.backendsAfter === 0,
          p.printed,
        )
      }
      f.rssPeak = Math.max(f.rssPeak, ownPeakRss())
    }
    if (uncaught.length) problems.push(`uncaught in the node's process: ${uncaught.map(String).join('; ')}`)
  } finally {
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
    await env.close()
    cluster?.drop()
    await cleanup()
  }
  return f
}

const t0 = Date.now()
let hostile: HostileFigures | undefined
let load: LoadFigures | undefined
let faults: FaultFigures | undefined

if (!only || only === 'fuzz') {
  note('== hostile input')
  hostile = await runHostile({ cases: num('cases', 100_000), seed: arg('seed') ? num('seed', 0) : undefined, log: note })
  problems.push(...hostile.problems.map((p) => `fuzz: ${p}`))
}
if (!only || only === 'load') {
  note('== load')
  load = await runLoad({ total: num('messages', 1_000_000), senders: 32, window: 100 })
  if (load.received !== load.senders * load.perSender || load.missing || load.outOfOrder)
    problems.push(`load: sent ${load.sent}, received ${load.received}, missing ${load.missing}, out of order ${load.outOfOrder}`)
  if (load.memAfter.heapUsed - load.memBefore.heapUsed > 64 * 1024 * 1024)
    problems.push(`load: heap after the run grew from ${mib(load.memBefore.heapUsed)} to ${mib(load.memAfter.heapUsed)}`)
}
if (!only || only === 'faults') {
  note('== faults')
  faults = await runFaults(num('rounds', 10))
}

out('')
out(`soak: ${((Date.now() - t0) / 1000).toFixed(0)} s`)
if (hostile) printHostile(hostile, out)
if (load) out(describeLoad(load))
if (faults) {
  const total = Object.values(faults.injected).reduce((a, b) => a + b, 0)
  out(`faults: ${total} injected in ${faults.rounds} rounds`)
  for (const [k, v] of Object.entries(faults.injected)) out(`  ${k}: ${v} injected, ${faults.passed[k] ?? 0} recovered as expected`)
  for (const s of faults.skipped) out(`  skipped: ${s}`)
  out(`  links and monitors fired with noconnection: ${faults.linksAndMonitorsFired}; pg sessions closed with their owners: ${faults.sessionsClosed}`)
  out(`  most bytes queued for a stopped peer: ${mib(faults.queuedWhileStopped)}; peak RSS of the process hosting the node: ${mib(faults.rssPeak)}`)
}
out('')
out('figures:')
if (hostile) out(`  fuzz cases tried: ${hostile.report.cases} (${hostile.report.casesPerSecond}/s); node peak RSS ${hostile.rssPeak ? mib(hostile.rssPeak) : '?'}`)
if (load) out(`  messages sent: ${load.sent}, received back: ${load.received}; node peak RSS ${mib(load.rssPeak)}`)
if (faults) out(`  faults injected: ${Object.values(faults.injected).reduce((a, b) => a + b, 0)}; peak RSS ${mib(faults.rssPeak)}`)
out(problems.length === 0 ? 'soak: all checks passed' : `soak: ${problems.length} PROBLEMS\n  ${problems.join('\n  ')}`)
process.exit(problems.length === 0 ? 0 : 1)
