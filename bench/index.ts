// `npm run bench`: every benchmark of ts-cnode in one report, each beside its anchors measured in the same
// run. Prints one table, writes bench/results/<timestamp>.json and latest.json (machine, versions, every
// sample) and bench/results/latest.svg (a chart of the ratios). BENCH_QUICK=1 runs it in about a minute.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { benchDir } from './build.js'
import { runEchoBench } from './echo.js'
import { cleanupOnSignals } from './targets.js'
import {
  machineInfo,
  normalizePart,
  renderSvg,
  renderTable,
  type BenchOptions,
  type BenchPart,
  type BenchRow,
} from './report.js'

const quick = process.env.BENCH_QUICK === '1'
const started = new Date()
const log = (line: string) => process.stdout.write(`  ${line}\n`)
const opts: BenchOptions = { quick, log }

interface PartResult {
  part: string
  seconds: number
  rows: BenchRow[]
  skipped: string[]
  notes: string[]
  raw?: unknown
}

async function runPart(part: string, section: string, run: () => Promise<unknown>): Promise<PartResult> {
  process.stdout.write(`\n[${part}]\n`)
  const t0 = performance.now()
  const res: PartResult = { part, seconds: 0, rows: [], skipped: [], notes: [] }
  try {
    const result = await run()
    const norm = normalizePart(result, section)
    if (norm === undefined) {
      res.skipped.push(`${part}: returned no rows in the BenchPart shape (bench/report.ts); stored raw in the JSON`)
      res.raw = result
    } else {
      res.rows = norm.rows
      res.skipped = norm.skipped ?? []
      res.notes = norm.notes ?? []
    }
  } catch (e) {
    const err = e as Error
    res.skipped.push(`${part}: failed: ${err.message?.split('\n')[0] ?? String(e)}`)
    process.stdout.write(`  ${part} failed:\n${err.stack ?? String(e)}\n`)
  }
  res.seconds = (performance.now() - t0) / 1000
  for (const s of res.skipped) log(`skipped: ${s}`)
  return res
}

/** bench/<file>.ts exporting <fn>(opts): run it when it exists, skip it with a message when it does not. */
async function optionalPart(part: string, section: string, file: string, fn: string): Promise<PartResult> {
  const full = path.join(benchDir, file)
  if (!existsSync(full)) {
    process.stdout.write(`\n[${part}]\n`)
    log(`skipped: bench/${file} does not exist yet`)
    return { part, seconds: 0, rows: [], skipped: [`${part}: bench/${file} does not exist`], notes: [] }
  }
  return runPart(part, section, async () => {
    const mod = (await import(`./${file.replace(/\.ts$/, '.js')}`)) as Record<string, unknown>
    const f = mod[fn]
    if (typeof f !== 'function') throw new Error(`bench/${file} does not export ${fn}()`)
    return (f as (o: BenchOptions) => Promise<BenchPart>)(opts)
  })
}

cleanupOnSignals()
const machine = await machineInfo()
process.stdout.write(
  `ts-cnode bench${quick ? ' (BENCH_QUICK=1)' : ''} — ${machine.cpuModel}, ${machine.cores} cores, ` +
    `${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${machine.node}, OTP ${machine.otp ?? '?'}, ` +
    `load ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}\n`,
)

const parts: PartResult[] = []
// BENCH_TS_NODE_ARGS: extra `node` flags for the ts node (V8 experiments such as --max-semi-space-size=32).
const tsNodeArgs = process.env.BENCH_TS_NODE_ARGS?.split(' ').filter(Boolean)
parts.push(await runPart('echo, gen_server, memory', 'echo', () => runEchoBench({ ...opts, tsNodeArgs })))
parts.push(await optionalPart('etf codec', 'etf', 'etf.ts', 'runEtfBench'))
parts.push(await optionalPart('drivers', 'drivers', 'drivers.ts', 'runDriversBench'))

const rows = parts.flatMap((p) => p.rows)
const skipped = parts.flatMap((p) => p.skipped)
const notes = parts.flatMap((p) => p.notes)
const totalSeconds = parts.reduce((s, p) => s + p.seconds, 0)

process.stdout.write('\n' + renderTable(rows) + '\n')
for (const n of notes) process.stdout.write(`note: ${n}\n`)
for (const s of skipped) process.stdout.write(`skipped: ${s}\n`)

const resultsDir = path.join(benchDir, 'results')
mkdirSync(resultsDir, { recursive: true })
const stamp = started.toISOString().replace(/[:.]/g, '-')
const json = JSON.stringify(
  {
    started: started.toISOString(),
    quick,
    seconds: Math.round(totalSeconds),
    machine,
    loadAverageAtEnd: os.loadavg(),
    parts: parts.map((p) => ({ part: p.part, seconds: Math.round(p.seconds * 10) / 10, skipped: p.skipped, notes: p.notes, raw: p.raw })),
    rows,
  },
  null,
  2,
)
writeFileSync(path.join(resultsDir, `${stamp}.json`), json)
writeFileSync(path.join(resultsDir, 'latest.json'), json)
writeFileSync(
  path.join(resultsDir, 'latest.svg'),
  renderSvg(
    rows,
    `ts-cnode vs its anchors — ${started.toISOString().slice(0, 16).replace('T', ' ')}${quick ? ' (quick)' : ''}`,
    `${machine.cpuModel}, ${machine.cores} cores; Node ${machine.node}; OTP ${machine.otp ?? '?'}; ${machine.kernel}`,
  ),
)
process.stdout.write(
  `\nwrote bench/results/${stamp}.json, bench/results/latest.json, bench/results/latest.svg (${Math.round(totalSeconds)} s)\n`,
)
process.exit(0)
