// What every part of the benchmark returns, and the one report built from all of them: a table for the
// terminal, JSON with the machine and versions, and an SVG chart of the ratios.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import * as os from 'node:os'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

/** One measured figure of ts-cnode beside the anchors measured in the same run. */
export interface BenchRow {
  /** 'echo', 'gen_server', 'memory', 'etf', 'drivers', ... */
  section: string
  /** What was measured, e.g. 'small tuple, 32 clients' or 'decode: 1 MB binary'. */
  name: string
  /** 'round trips/s', 'calls/s', 'ops/s', 'MB', 'ms', ... */
  unit: string
  /** true for throughput, false for memory and latency. */
  higherIsBetter: boolean
  /** ts-cnode's figure; undefined when the ts-cnode side could not be measured (see note). */
  value: number | undefined
  /** Anchor name → its figure, e.g. { BEAM: 61000, 'C-node (ei)': 65000, erlang_js: 9000 }. */
  anchors: Record<string, number | undefined>
  /** Every repetition by label (ts-cnode is TS_LABEL), in the order run: the table shows the best, and the
   *  median and range of the run-by-run ratios when both sides ran the same number of interleaved runs. */
  samples?: Record<string, number[]>
  note?: string
}

/** What runEtfBench(), runDriversBench() and the parts in this folder resolve with. */
export interface BenchPart {
  rows: BenchRow[]
  /** Parts not measured, with the reason (missing toolchain, ...). */
  skipped?: string[]
  notes?: string[]
}

export interface BenchOptions {
  /** BENCH_QUICK=1: about a minute for everything. */
  quick: boolean
  log: (line: string) => void
}

/**
 * ts-cnode's advantage over an anchor: > 1 means ts-cnode is better (faster, or smaller for memory).
 * undefined when either side is missing.
 */
export function advantage(row: BenchRow, anchor: string): number | undefined {
  const a = row.anchors[anchor]
  const v = row.value
  if (a === undefined || v === undefined || a <= 0 || v <= 0) return undefined
  return row.higherIsBetter ? v / a : a / v
}

/** The label of ts-cnode's own repetitions in BenchRow.samples. */
export const TS_LABEL = 'ts-cnode'

/**
 * ts-cnode's advantage over an anchor repetition by repetition: the parts run their repetitions interleaved
 * (ts-cnode, anchor, ts-cnode, anchor, ...), so repetition i of both saw the same machine. Empty unless both
 * sides have the same number (at least two) of samples.
 */
export function pairedAdvantages(row: BenchRow, anchor: string): number[] {
  const ts = row.samples?.[TS_LABEL]
  const an = row.samples?.[anchor]
  if (ts === undefined || an === undefined || ts.length < 2 || ts.length !== an.length) return []
  const out: number[] = []
  for (let i = 0; i < ts.length; i++) {
    if (!(ts[i] > 0 && an[i] > 0)) return []
    out.push(row.higherIsBetter ? ts[i] / an[i] : an[i] / ts[i])
  }
  return out
}

/**
 * The median and range of the paired advantages, or undefined without paired samples. Best-of figures
 * favour whichever side varies more between runs (a noisy anchor's one lucky run sets its best); the
 * median of paired runs does not.
 */
export function pairedSpread(row: BenchRow, anchor: string): { median: number; min: number; max: number; runs: number } | undefined {
  const r = pairedAdvantages(row, anchor).sort((a, b) => a - b)
  if (r.length === 0) return undefined
  const mid = r.length >> 1
  const median = r.length % 2 === 1 ? r[mid] : Math.sqrt(r[mid - 1] * r[mid])
  return { median, min: r[0], max: r[r.length - 1], runs: r.length }
}

const ANCHOR_LABELS: Record<string, string> = { erlangJs: 'erlang_js', erlang_js: 'erlang_js', beam: 'BEAM', seed: 'seed driver' }
const NOT_ANCHORS = new Set(['ours', 'ratios', 'notes', 'samples'])

function numbersOf(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const out: Record<string, number> = {}
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[k] = x
  return Object.keys(out).length > 0 ? out : undefined
}

/** `{ label: [numbers] }` (an op's per-run samples in the "figures" shape), or undefined. */
function samplesOf(v: unknown): Record<string, number[]> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const out: Record<string, number[]> = {}
  for (const [k, x] of Object.entries(v)) if (Array.isArray(x) && x.every((n) => typeof n === 'number')) out[k] = x
  return Object.keys(out).length > 0 ? out : undefined
}

/**
 * Rows in the "figures" shape: `{ shape | name, ours: { op: value }, <anchor>: { op: value } | null,
 * samples?: { op: { label: [per-run values] } } }` (what bench/etf.ts returns) become one row per op, e.g.
 * 'decode: map_100_nested'.
 */
function figuresToRows(items: unknown[], section: string): BenchRow[] {
  const rows: BenchRow[] = []
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue
    const rec = item as Record<string, unknown>
    const ours = numbersOf(rec.ours)
    const label = typeof rec.shape === 'string' ? rec.shape : typeof rec.name === 'string' ? rec.name : undefined
    if (ours === undefined || label === undefined) continue
    const anchors = Object.entries(rec)
      .filter(([k, v]) => !NOT_ANCHORS.has(k) && (v === null || numbersOf(v) !== undefined))
      .map(([k, v]) => [ANCHOR_LABELS[k] ?? k, numbersOf(v)] as const)
    const notes = Array.isArray(rec.notes) ? rec.notes.filter((n) => typeof n === 'string').join('; ') : ''
    for (const [op, value] of Object.entries(ours)) {
      const samples = samplesOf((rec.samples as Record<string, unknown> | undefined)?.[op])
      rows.push({
        section,
        name: `${op}: ${label}`,
        unit: typeof rec.unit === 'string' ? rec.unit : 'ops/s',
        higherIsBetter: true,
        value,
        anchors: Object.fromEntries(anchors.map(([a, figs]) => [a, figs?.[op]])),
        ...(notes ? { note: notes } : {}),
        ...(samples ? { samples } : {}),
      })
    }
  }
  return rows
}

function isRow(r: unknown): r is BenchRow {
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof (r as BenchRow).name === 'string' &&
    typeof (r as BenchRow).anchors === 'object' &&
    (r as BenchRow).anchors !== null
  )
}

/**
 * Accepts what another part returned: a BenchPart, a plain array of BenchRows, or an array in the
 * "figures" shape (see figuresToRows). undefined when nothing usable is in it.
 */
export function normalizePart(result: unknown, section = 'other'): BenchPart | undefined {
  const obj = (typeof result === 'object' && result !== null ? result : {}) as Partial<BenchPart>
  const items: unknown[] | undefined = Array.isArray(result) ? result : Array.isArray(obj.rows) ? obj.rows : undefined
  if (items === undefined) return undefined
  let rows: BenchRow[] = items.filter(isRow).map((r) => ({
    ...r,
    section: r.section ?? section,
    unit: r.unit ?? '',
    higherIsBetter: r.higherIsBetter ?? true,
  }))
  if (rows.length === 0) rows = figuresToRows(items, section)
  if (rows.length === 0) return undefined
  return {
    rows,
    skipped: Array.isArray(obj.skipped) ? obj.skipped : undefined,
    notes: Array.isArray(obj.notes) ? obj.notes : undefined,
  }
}

// --- machine and versions ------------------------------------------------------------------------

export interface MachineInfo {
  cpuModel: string
  cores: number
  memoryBytes: number
  loadAverageAtStart: number[]
  kernel: string
  platform: string
  node: string
  v8: string
  otp: string | undefined
  erts: string | undefined
  gcc: string | undefined
  hostname: string
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args)
    return (stdout || stderr).split('\n')[0].trim() || undefined
  } catch {
    return undefined
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown'
  if (cpuModel === 'unknown') {
    try {
      cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel
    } catch {
      // not Linux
    }
  }
  const otpLine = await firstLine('erl', [
    '-noshell',
    '-eval',
    'io:format("~s ~s~n", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().',
  ])
  const [otp, erts] = otpLine?.split(' ') ?? []
  return {
    cpuModel,
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    loadAverageAtStart: os.loadavg(),
    kernel: `${os.type()} ${os.release()}`,
    platform: `${os.platform()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    otp,
    erts,
    gcc: await firstLine('gcc', ['--version']),
    hostname: os.hostname(),
  }
}

// --- the terminal table -----------------------------------------------------------------------------

export function formatNumber(n: number | undefined, unit = ''): string {
  if (n === undefined || !Number.isFinite(n)) return '—'
  if (unit === 'MB') return n.toFixed(1)
  if (n >= 100) return Math.round(n).toLocaleString('en-US')
  if (n >= 10) return n.toFixed(1)
  return n.toPrecision(3)
}

function formatRatio(r: number | undefined): string {
  return r === undefined ? '—' : `${r.toFixed(2)}x`
}

/** Best-of ratio, then (with paired runs) their median and range: `0.93x (median 0.95, 0.88–1.02)`. */
export function formatAdvantage(row: BenchRow, anchor: string): string {
  const best = formatRatio(advantage(row, anchor))
  const s = pairedSpread(row, anchor)
  return s === undefined ? best : `${best} (median ${s.median.toFixed(2)}, ${s.min.toFixed(2)}–${s.max.toFixed(2)})`
}

/** The anchors that appear in the rows, in first-seen order. */
export function anchorNames(rows: BenchRow[]): string[] {
  const names: string[] = []
  for (const r of rows) for (const a of Object.keys(r.anchors)) if (!names.includes(a)) names.push(a)
  return names
}

/** One table per section (anchors differ between sections), as aligned text. */
export function renderTable(rows: BenchRow[]): string {
  const out: string[] = []
  const sections = [...new Set(rows.map((r) => r.section))]
  for (const section of sections) {
    const rs = rows.filter((r) => r.section === section)
    const anchors = anchorNames(rs)
    const header = ['', 'unit', 'ts-cnode', ...anchors, ...anchors.map((a) => `vs ${a}`)]
    const body = rs.map((r) => [
      r.name + (r.higherIsBetter ? '' : ' (lower is better)'),
      r.unit,
      formatNumber(r.value, r.unit),
      ...anchors.map((a) => formatNumber(r.anchors[a], r.unit)),
      ...anchors.map((a) => formatAdvantage(r, a)),
    ])
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)))
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 || i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
    out.push(`== ${section} ==`)
    out.push(line(header))
    out.push(widths.map((w) => '-'.repeat(w)).join('  '))
    for (const b of body) out.push(line(b))
    const notes = rs.filter((r) => r.note).map((r) => `  * ${r.name}: ${r.note}`)
    out.push(...notes, '')
  }
  out.push(
    '"vs X" = ts-cnode\'s advantage over X: > 1.00x means ts-cnode is faster (or smaller, for memory). The first figure',
    'is best run over best run; in brackets, the median and range of the run-by-run ratios (runs are interleaved).',
  )
  return out.join('\n')
}

// --- the SVG chart --------------------------------------------------------------------------------

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1']

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * Horizontal bars of ts-cnode's advantage over each anchor, on a log scale centred on 1x (so 2x faster and
 * 2x slower are the same length either side), one group per measured row.
 */
export function renderSvg(rows: BenchRow[], title: string, subtitle: string): string {
  const anchors = anchorNames(rows)
  const items = rows
    .map((r) => ({ r, bars: anchors.map((a) => ({ a, v: advantage(r, a) })).filter((b) => b.v !== undefined) }))
    .filter((x) => x.bars.length > 0)
  const barH = 14
  const gap = 10
  const labelW = 470
  const plotW = 480
  const top = 78
  const width = labelW + 56 + plotW + 100
  // A fixed scale from 1/16x to 16x keeps the bars that matter (near 1x) readable; longer bars are cut at
  // the edge and keep their figure.
  const lim = Math.log10(16)
  // Room left of the plot for the figure of a bar cut at 1/16x.
  const padL = 56
  const xOf = (v: number) => labelW + padL + plotW / 2 + (Math.log10(v) / lim) * (plotW / 2)
  let y = top
  const parts: string[] = []
  let section = ''
  for (const { r, bars } of items) {
    if (r.section !== section) {
      section = r.section
      y += 6
      parts.push(`<text x="8" y="${y + 10}" font-weight="bold" font-size="13">${esc(section)}</text>`)
      y += 18
    }
    const groupH = bars.length * barH
    parts.push(
      `<text x="${labelW - 8}" y="${y + groupH / 2 + 4}" text-anchor="end" font-size="12">${esc(r.name.length > 52 ? r.name.slice(0, 51) + '…' : r.name)}${r.higherIsBetter ? '' : ' (lower is better)'}</text>`,
    )
    for (const b of bars) {
      const v = b.v as number
      const x0 = xOf(1)
      const clipped = Math.abs(Math.log10(v)) > lim
      const x1 = xOf(Math.min(Math.max(v, 10 ** -lim), 10 ** lim))
      const color = PALETTE[anchors.indexOf(b.a) % PALETTE.length]
      parts.push(
        `<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 1}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${barH - 2}" fill="${color}"><title>${esc(`${r.name} vs ${b.a}: ${v.toFixed(2)}x`)}</title></rect>`,
      )
      // The range of the run-by-run ratios as a whisker across the bar, when the runs were paired.
      const sp = pairedSpread(r, b.a)
      if (sp !== undefined) {
        const clamp = (x: number) => xOf(Math.min(Math.max(x, 10 ** -lim), 10 ** lim))
        const wy = y + barH / 2
        parts.push(
          `<line x1="${clamp(sp.min).toFixed(1)}" y1="${wy}" x2="${clamp(sp.max).toFixed(1)}" y2="${wy}" stroke="#222" stroke-width="1"><title>${esc(`runs ${sp.min.toFixed(2)}x to ${sp.max.toFixed(2)}x, median ${sp.median.toFixed(2)}x`)}</title></line>`,
          `<line x1="${clamp(sp.median).toFixed(1)}" y1="${y + 2}" x2="${clamp(sp.median).toFixed(1)}" y2="${y + barH - 2}" stroke="#222" stroke-width="2"/>`,
        )
      }
      const tx = v >= 1 ? x1 + 4 : x1 - 4
      parts.push(
        `<text x="${tx.toFixed(1)}" y="${y + barH - 3}" font-size="10" text-anchor="${v >= 1 ? 'start' : 'end'}">${clipped ? (v >= 1 ? '» ' : '« ') : ''}${v.toFixed(2)}x</text>`,
      )
      y += barH
    }
    y += gap
  }
  const height = y + 40
  const ticks: string[] = []
  for (const v of [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16]) {
    const x = xOf(v)
    ticks.push(`<line x1="${x.toFixed(1)}" y1="${top - 6}" x2="${x.toFixed(1)}" y2="${y}" stroke="#ddd"/>`)
    const label = v >= 1 ? `${v}x` : `1/${1 / v}x`
    ticks.push(`<text x="${x.toFixed(1)}" y="${top - 10}" font-size="10" text-anchor="middle" fill="#555">${label}</text>`)
  }
  const legend = anchors
    .map(
      (a, i) =>
        `<rect x="${labelW + 56 + i * 150}" y="${y + 14}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>` +
        `<text x="${labelW + 56 + i * 150 + 16}" y="${y + 24}" font-size="12">vs ${esc(a)}</text>`,
    )
    .join('')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="40" font-size="11" fill="#444">${esc(subtitle)}</text>`,
    `<text x="8" y="56" font-size="11" fill="#444">Bars: ts-cnode's advantage (log scale). Right of 1x: ts-cnode faster (or smaller); left: slower.</text>`,
    ...ticks,
    `<line x1="${xOf(1)}" y1="${top - 6}" x2="${xOf(1)}" y2="${y}" stroke="#333"/>`,
    ...parts,
    legend,
    `</svg>`,
  ].join('\n')
}
