// Re-renders the table and the chart of a results file: npx tsx bench/render.ts [bench/results/<file>.json]
// (default latest.json); writes the SVG beside it.
import { readFileSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { benchDir } from './build.js'
import { renderSvg, renderTable, type BenchRow, type MachineInfo } from './report.js'

const file = process.argv[2] ?? path.join(benchDir, 'results', 'latest.json')
const data = JSON.parse(readFileSync(file, 'utf8')) as { started: string; quick: boolean; machine: MachineInfo; rows: BenchRow[] }
process.stdout.write(renderTable(data.rows) + '\n')
const svg = file.replace(/\.json$/, '.svg')
const m = data.machine
writeFileSync(
  svg,
  renderSvg(
    data.rows,
    `ts-cnode vs its anchors — ${data.started.slice(0, 16).replace('T', ' ')}${data.quick ? ' (quick)' : ''}`,
    `${m.cpuModel}, ${m.cores} cores; Node ${m.node}; OTP ${m.otp ?? '?'}; ${m.kernel}`,
  ),
)
process.stdout.write(`wrote ${path.relative(process.cwd(), svg)}\n`)
