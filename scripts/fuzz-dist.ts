// The long hostile-input run: `npx tsx scripts/fuzz-dist.ts --cases 100000 [--seed N] [--concurrency N]`.
// A node in its own process, a real erl peer pinging it and exchanging messages with it throughout, and
// random / mutated bytes at its embedded EPMD and its distribution port before, during and after the
// handshake (integration/fuzz/dist-fuzz.ts). Prints cases/s and totals; exits 1 if the node crashed, the
// peer lost an answer or its connection, a valid message was refused, or retained memory grew.
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanup } from '../integration/harness.js'
import { runFuzz, type FuzzReport } from '../integration/fuzz/dist-fuzz.js'
import { mib, startScene, type ChatterStats } from '../integration/fuzz/scenario.js'
import type { Mem } from '../integration/target.js'

export interface HostileFigures {
  report: FuzzReport
  chatter: ChatterStats
  alive: boolean
  death?: string
  memBefore: Mem
  memAfter?: Mem
  rssPeak?: number
  /** Reasons the node logged for refusing or closing connections, by code. */
  reasons: Record<string, number>
  problems: string[]
}

export async function runHostile(opts: { cases: number; seed?: number; concurrency?: number; log?: (s: string) => void }): Promise<HostileFigures> {
  const log = opts.log ?? (() => {})
  const sc = await startScene()
  try {
    log(`target ${sc.target.name} (pid ${sc.target.proc.pid}), dist port ${sc.fuzz.port}, embedded EPMD ${sc.epmdPort}; erl peer ${sc.erl.nodeName}`)
    const report = await runFuzz(sc.fuzz, {
      cases: opts.cases,
      seed: opts.seed,
      concurrency: opts.concurrency ?? 48,
      onProgress: (r) => log(`  ${r.cases} cases, ${r.casesPerSecond}/s, ${r.handshakes} handshakes`),
    })
    const problems: string[] = []
    const alive = sc.target.alive
    if (!alive) problems.push(`the node died: ${sc.target.death}`)
    const chatter = alive ? await sc.chatterStats() : { ok: 0, pang: 0, lost: 0, nodedown: 0 }
    if (chatter.lost || chatter.pang || chatter.nodedown) problems.push(`the erl peer: ${JSON.stringify(chatter)}`)
    if (report.validRefusedDetail.length) problems.push(`${report.validRefusedDetail.length} valid messages refused: ${report.validRefusedDetail.slice(0, 5).join('; ')}`)
    if (report.undecodable.length) problems.push(`the node sent undecodable data: ${report.undecodable.slice(0, 3).join('; ')}`)
    const memAfter = alive ? await sc.target.mem() : undefined
    if (memAfter && memAfter.heapUsed - sc.mem0.heapUsed > 64 * 1024 * 1024)
      problems.push(`heap grew from ${mib(sc.mem0.heapUsed)} to ${mib(memAfter.heapUsed)}`)
    const reasons: Record<string, number> = {}
    for (const l of sc.target.logs) {
      const code = typeof l.code === 'string' ? l.code : typeof l.reason === 'string' ? l.reason.split(':')[0] : undefined
      if (code && l.level !== 'debug' && !/ up /.test(l.msg) && !/ down: /.test(l.msg)) reasons[code] = (reasons[code] ?? 0) + 1
    }
    return { report, chatter, alive, death: alive ? undefined : sc.target.death, memBefore: sc.mem0, memAfter, rssPeak: alive ? sc.target.rss().peak : undefined, reasons, problems }
  } finally {
    await sc.close()
    await cleanup()
  }
}

export function printHostile(f: HostileFigures, out: (s: string) => void = (s) => process.stdout.write(s + '\n')): void {
  const r = f.report
  out(`fuzz: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s = ${r.casesPerSecond} cases/s (seed ${r.seed})`)
  out(`  ${r.handshakes} completed handshakes, ${mib(r.bytesSent)} of frames after them`)
  out(`  connections the node closed after the handshake: ${r.closedByNode.length}; valid messages refused: ${r.validRefusedDetail.length}; undecodable replies: ${r.undecodable.length}`)
  out('  outcome per kind            answered   closed  stalled  refused')
  for (const [k, v] of Object.entries(r.byKind).sort())
    out(`    ${k.padEnd(22)} ${String(v.answered).padStart(9)} ${String(v.closed).padStart(8)} ${String(v.stalled).padStart(8)} ${String(v.refused).padStart(8)}`)
  out('  reasons logged by the node (refusals and closes):')
  for (const [k, v] of Object.entries(f.reasons).sort((a, b) => b[1] - a[1]).slice(0, 20)) out(`    ${String(v).padStart(7)}  ${k}`)
  out(`  erl peer meanwhile: ${f.chatter.ok} answers (pings and echoes), ${f.chatter.lost} lost, ${f.chatter.pang} pang, ${f.chatter.nodedown} nodedown`)
  out(
    `  node memory: heap ${mib(f.memBefore.heapUsed)} -> ${f.memAfter ? mib(f.memAfter.heapUsed) : '?'} (after GC), ` +
      `RSS ${mib(f.memBefore.rss)} -> ${f.memAfter ? mib(f.memAfter.rss) : '?'}, peak RSS ${f.rssPeak ? mib(f.rssPeak) : '?'}`,
  )
  out(`  node alive: ${f.alive}${f.death ? ` (${f.death})` : ''}`)
  out(f.problems.length === 0 ? '  no problems' : `  PROBLEMS:\n    ${f.problems.join('\n    ')}`)
}

function arg(name: string, dflt?: number): number | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const f = await runHostile({
    cases: arg('cases', 100_000)!,
    seed: arg('seed'),
    concurrency: arg('concurrency'),
    log: (s) => process.stderr.write(s + '\n'),
  })
  printHostile(f)
  process.exit(f.problems.length === 0 ? 0 : 1)
}
