// ETF codec benchmark: decode and encode ops/s on a corpus of realistic terms, beside erlang_js and beside
// the BEAM's own binary_to_term/term_to_binary (an erl run in the same process tree, same corpus bytes).
//   npx tsx bench/etf.ts            prints a table and writes bench/results/etf.json
// Every decoder decodes the bytes erlang:term_to_binary/1 produced for the shape.
import { execFile, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import {
  ImproperList,
  Pid,
  Ref,
  atom,
  binaryToTerm,
  termToBinary,
  termToChunks,
  tuple,
  type Term,
} from '../src/etf/index.js'
import { benchDir } from './build.js'
import { TS_LABEL, pairedSpread } from './report.js'

const execFileP = promisify(execFile)

/** Milliseconds of measured work per (shape, codec, direction), in three rounds; a calibration run comes first. */
const TARGET_MS = Number(process.env.ETF_BENCH_MS ?? 450)

export interface Result {
  shape: string
  /** Size of the Erlang-encoded term (what every decoder reads). */
  bytes: number
  ours: { decode: number; encode: number; encodeBuffer: number }
  erlangJs: { decode: number; encode: number } | null
  beam: { decode: number; encode: number } | null
  /** ours / erlang_js and ours / BEAM, ops/s over ops/s (encode: our chunk-list encoder, what the node sends). */
  ratios: {
    decodeVsErlangJs: number | null
    encodeVsErlangJs: number | null
    encodeBufferVsErlangJs: number | null
    decodeVsBeam: number | null
    encodeVsBeam: number | null
    encodeBufferVsBeam: number | null
  }
  notes: string[]
  /** Per op, ops/s of each round, ours and erlang_js interleaved (round i of both saw the same machine). */
  samples?: Record<string, Record<string, number[]>>
}

// --- the corpus ---------------------------------------------------------------------------------

function pgResult(): Term {
  // {ok, [ColumnNames | Rows]}: every name and value a charlist, NULL as [] (the seed's pg_sync:select/2).
  const cols = ['id', 'name', 'email', 'created_at', 'balance', 'active', 'note']
  const rows: Term[] = [cols]
  for (let i = 1; i <= 100; i++) {
    rows.push([
      String(i),
      `Customer ${i} Lastname`,
      `customer${i}@example.com`,
      `2024-0${(i % 9) + 1}-1${i % 10} 12:${String(i % 60).padStart(2, '0')}:00+00`,
      (i * 37.25).toFixed(2),
      i % 3 === 0 ? 'f' : 't',
      i % 4 === 0 ? [] : `note for row ${i}`,
    ])
  }
  return tuple(atom('ok'), rows)
}

function genCall(): Term {
  const node = atom('client@host')
  const from = tuple(new Pid(node, 85, 0, 1700000000), new ImproperList([atom('alias')], new Ref(node, 1700000000, [1, 2, 3])))
  return tuple(
    atom('$gen_call'),
    from,
    tuple(atom('select'), new Pid(atom('tsnode@host'), 12, 0, 3), 'SELECT id, name FROM customers WHERE id = 42'),
  )
}

function nestedMap(): Term {
  const m = new Map<Term, Term>()
  for (let i = 0; i < 100; i++) {
    m.set(
      atom(`key_${i}`),
      new Map<Term, Term>([
        [atom('id'), i],
        [atom('name'), Buffer.from(`item number ${i}`)],
        [atom('tags'), [atom('a'), atom('b')]],
        [atom('score'), i + 0.5],
        [atom('meta'), new Map<Term, Term>([[atom('created'), 1700000000 + i]])],
      ]),
    )
  }
  return m
}

function integers(): Term {
  return Array.from({ length: 1000 }, (_, i) => (i * 7919) % 100_000)
}

function mixedSmall(): Term {
  return tuple(atom('reply'), 42, [1.5, atom('ok'), 'str', Buffer.from('bin')], new Map<Term, Term>([[atom('a'), 1]]))
}

export const corpus: { name: string; term: () => Term }[] = [
  { name: 'pg_result_100_rows', term: pgResult },
  { name: 'gen_call', term: genCall },
  { name: 'map_100_nested', term: nestedMap },
  { name: 'list_1000_integers', term: integers },
  { name: 'binary_1MB', term: () => Buffer.alloc(1024 * 1024, 0xab) },
  { name: 'binaries_64x1KB', term: () => Array.from({ length: 64 }, (_, i) => Buffer.alloc(1024, i)) },
  { name: 'mixed_small', term: mixedSmall },
]

// --- measuring ------------------------------------------------------------------------------------

/** Every result is stored here so no call can be optimised away. */
export let sink: unknown

const ROUNDS = 5

/** ops/s of each f: calibrate each to a tenth of a round, then ROUNDS interleaved rounds. The best round is the
 *  figure (other load on the machine only ever slows a round down); every round is kept for paired ratios. */
function opsPerSec(fs: (() => unknown)[]): { best: number[]; rounds: number[][] } {
  const round = TARGET_MS / ROUNDS
  const ns = fs.map((f) => {
    for (let i = 0; i < 20; i++) sink = f()
    let n = 1
    for (;;) {
      const t0 = performance.now()
      for (let i = 0; i < n; i++) sink = f()
      const dt = performance.now() - t0
      if (dt >= round / 10) return Math.max(1, Math.round((n * round) / dt))
      n *= 4
    }
  })
  const rounds: number[][] = fs.map(() => [])
  for (let r = 0; r < ROUNDS; r++)
    fs.forEach((f, k) => {
      const n = ns[k]
      const t0 = performance.now()
      for (let i = 0; i < n; i++) sink = f()
      const dt = performance.now() - t0
      rounds[k].push((n * 1000) / dt)
    })
  return { best: rounds.map((r) => Math.max(...r)), rounds }
}

interface ErlangJs {
  binary_to_term(data: Buffer, cb: (err: unknown, term: unknown) => void): void
  term_to_binary(term: unknown, cb: (err: unknown, data: Buffer) => void): void
}

function loadErlangJs(): ErlangJs | undefined {
  try {
    return createRequire(import.meta.url)('erlang_js').Erlang as ErlangJs
  } catch {
    return undefined
  }
}

/** erlang_js calls back synchronously for uncompressed input; these unwrap that. */
function ejsDecode(E: ErlangJs, b: Buffer): unknown {
  let out: unknown
  E.binary_to_term(b, (err, t) => {
    if (err) throw err
    out = t
  })
  return out
}
function ejsEncode(E: ErlangJs, t: unknown): Buffer {
  let out: Buffer | undefined
  E.term_to_binary(t, (err, b) => {
    if (err) throw err
    out = b
  })
  return out!
}

/** Runs bench/erl/etf_bench.erl: writes the Erlang encodings of the corpus into dir and times the BEAM. */
async function runBeam(dir: string, names: string[]): Promise<Map<string, { decode: number; encode: number }>> {
  const beamDir = path.join(dir, 'beam')
  mkdirSync(beamDir)
  await execFileP('erlc', ['-o', beamDir, path.join(benchDir, 'erl', 'etf_bench.erl')])
  const list = '[' + names.map((n) => JSON.stringify(n)).join(',') + ']'
  const r = await runToExit('erl', [
    '-noshell',
    '-pa',
    beamDir,
    '-eval',
    `etf_bench:run(${JSON.stringify(dir)}, ${list}, ${TARGET_MS * 1000}), halt().`,
  ])
  const out = r.out + r.err
  if (r.code !== 0 || !out.includes('DONE')) throw new Error(`erl bench exited with ${r.code}:\n${out}`)
  const results = new Map<string, { decode: number; encode: number }>()
  for (const m of out.matchAll(/^RESULT (\S+) ([\d.]+) ([\d.]+)$/gm))
    results.set(m[1], { decode: Number(m[2]), encode: Number(m[3]) })
  return results
}

interface Measured {
  bytes: number
  ours: Result['ours']
  erlangJs: Result['erlangJs']
  notes: string[]
  samples?: Result['samples']
}

/** Measures one shape's Erlang-encoded bytes with every JS codec (runs inside a worker). */
function measure(file: string): Measured {
  const bytes = readFileSync(file)
  const notes: string[] = []
  const term = binaryToTerm(bytes)
  const E = loadErlangJs()
  if (!E) {
    notes.push('erlang_js not installed')
    const [decode, encode, encodeBuffer] = opsPerSec([
      () => binaryToTerm(bytes),
      () => termToChunks(term),
      () => termToBinary(term),
    ]).best
    return { bytes: bytes.length, ours: { decode, encode, encodeBuffer }, erlangJs: null, notes }
  }
  const ejsTerm = ejsDecode(E, bytes)
  const dec = opsPerSec([() => binaryToTerm(bytes), () => ejsDecode(E, bytes)])
  const enc = opsPerSec([() => termToChunks(term), () => termToBinary(term), () => ejsEncode(E, ejsTerm)])
  const [decode, ejsDec] = dec.best
  const [encode, encodeBuffer, ejsEnc] = enc.best
  const samples = {
    decode: { [TS_LABEL]: dec.rounds[0], erlang_js: dec.rounds[1] },
    encode: { [TS_LABEL]: enc.rounds[0], erlang_js: enc.rounds[2] },
    encodeBuffer: { [TS_LABEL]: enc.rounds[1], erlang_js: enc.rounds[2] },
  }
  return { bytes: bytes.length, ours: { decode, encode, encodeBuffer }, erlangJs: { decode: ejsDec, encode: ejsEnc }, notes, samples }
}

/** Runs measure(file) in a fresh node process (same loader flags), so no shape inherits another's JIT state. */
async function inChild(file: string): Promise<Measured> {
  const { code, out, err } = await runToExit(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    ...process.env,
    ETF_BENCH_MEASURE: file,
  })
  const line = out.split('\n').find((l) => l.startsWith('MEASURED '))
  if (code !== 0 || !line) throw new Error(`bench child exited with ${code}:\n${err}${out}`)
  return JSON.parse(line.slice('MEASURED '.length)) as Measured
}

/** Runs a command to its exit, collecting its output; it is killed if this process exits first. */
async function runToExit(
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', resolve)
    })
    return { code, out, err }
  } finally {
    process.off('exit', kill)
    if (child.exitCode === null && child.signalCode === null) kill()
  }
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a === undefined || b === undefined || b === 0 ? null : a / b

export async function runEtfBench(): Promise<Result[]> {
  // ETF_BENCH_SHAPES=a,b limits the run to those shapes.
  const only = process.env.ETF_BENCH_SHAPES?.split(',')
  const shapes = only ? corpus.filter((s) => only.includes(s.name)) : corpus
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ts-cnode-etf-bench-'))
  try {
    for (const s of shapes) writeFileSync(path.join(dir, `${s.name}.in`), termToBinary(s.term()))
    let beam: Map<string, { decode: number; encode: number }> | undefined
    let beamNote: string | undefined
    try {
      beam = await runBeam(
        dir,
        shapes.map((s) => s.name),
      )
    } catch (e) {
      beamNote = `BEAM not measured: ${(e as Error).message.split('\n')[0]}`
    }
    const results: Result[] = []
    for (const s of shapes) {
      const notes: string[] = []
      if (beamNote) notes.push(beamNote)
      // The bytes the BEAM wrote for this shape (ours when the BEAM is unavailable).
      let file = path.join(dir, `${s.name}.erl.bin`)
      try {
        readFileSync(file)
      } catch {
        file = path.join(dir, `${s.name}.in`)
        notes.push('decoded bytes are our own encoding (no erl)')
      }
      // Each shape in a fresh process, so the JIT state of one shape does not colour the next.
      const m = await inChild(file)
      notes.push(...m.notes)
      const b = beam?.get(s.name) ?? null
      results.push({
        shape: s.name,
        bytes: m.bytes,
        ours: m.ours,
        erlangJs: m.erlangJs,
        beam: b,
        ratios: {
          decodeVsErlangJs: ratio(m.ours.decode, m.erlangJs?.decode),
          encodeVsErlangJs: ratio(m.ours.encode, m.erlangJs?.encode),
          encodeBufferVsErlangJs: ratio(m.ours.encodeBuffer, m.erlangJs?.encode),
          decodeVsBeam: ratio(m.ours.decode, b?.decode),
          encodeVsBeam: ratio(m.ours.encode, b?.encode),
          encodeBufferVsBeam: ratio(m.ours.encodeBuffer, b?.encode),
        },
        notes,
        ...(m.samples ? { samples: m.samples } : {}),
      })
    }
    return results
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const fmtOps = (n: number | undefined | null): string =>
  n == null ? '-' : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)
const fmtX = (n: number | null): string => (n == null ? '-' : n >= 100 ? `${n.toFixed(0)}x` : `${n.toFixed(2)}x`)

/** The median of the round-by-round ratios ours / erlang_js of one op, or null without paired rounds. */
function pairedMedian(r: Result, op: string): number | null {
  const samples = r.samples?.[op]
  if (samples === undefined) return null
  const row = { section: 'etf', name: op, unit: 'ops/s', higherIsBetter: true, value: undefined, anchors: {}, samples }
  return pairedSpread(row, 'erlang_js')?.median ?? null
}

export function formatEtfTable(results: Result[]): string {
  const head = [
    'shape',
    'bytes',
    'dec ours',
    'dec ejs',
    'dec beam',
    'dec/ejs',
    'median',
    'dec/beam',
    'enc ours',
    'enc ours(1buf)',
    'enc ejs',
    'enc beam',
    'enc/ejs',
    'enc(1buf)/ejs',
    'enc/beam',
    'enc(1buf)/beam',
  ]
  const rows = results.map((r) => [
    r.shape,
    String(r.bytes),
    fmtOps(r.ours.decode),
    fmtOps(r.erlangJs?.decode),
    fmtOps(r.beam?.decode),
    fmtX(r.ratios.decodeVsErlangJs),
    fmtX(pairedMedian(r, 'decode')),
    fmtX(r.ratios.decodeVsBeam),
    fmtOps(r.ours.encode),
    fmtOps(r.ours.encodeBuffer),
    fmtOps(r.erlangJs?.encode),
    fmtOps(r.beam?.encode),
    fmtX(r.ratios.encodeVsErlangJs),
    fmtX(r.ratios.encodeBufferVsErlangJs),
    fmtX(r.ratios.encodeVsBeam),
    fmtX(r.ratios.encodeBufferVsBeam),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  const notes = [...new Set(results.flatMap((r) => r.notes))]
  return [
    'ETF codec, ops/s (dec: binaryToTerm; enc: termToChunks, the chunk list the node writes; enc(1buf): termToBinary;',
    `best round of ${ROUNDS}; median: of the round-by-round dec/ejs ratios)`,
    line(head),
    ...rows.map(line),
    ...notes.map((n) => `note: ${n}`),
  ].join('\n')
}

const main = import.meta.url === pathToFileURL(process.argv[1] ?? '').href
if (main && process.env.ETF_BENCH_MEASURE) {
  console.log('MEASURED ' + JSON.stringify(measure(process.env.ETF_BENCH_MEASURE)))
} else if (main) {
  const results = await runEtfBench()
  console.log(formatEtfTable(results))
  const outDir = path.join(benchDir, 'results')
  mkdirSync(outDir, { recursive: true })
  writeFileSync(
    path.join(outDir, 'etf.json'),
    JSON.stringify({ date: new Date().toISOString(), node: process.version, targetMs: TARGET_MS, results }, null, 2) + '\n',
  )
  console.log(`wrote ${path.join(outDir, 'etf.json')}`)
}
