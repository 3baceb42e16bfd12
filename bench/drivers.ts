// The seed drivers benchmark: selects per second from 1 and 16 concurrent Erlang clients through
// ts-cnode's sharded drivers, beside the seed's own linked-in pg_sync driver (rebuilt from the seed's C
// code in bench/seed/, compiled here against erl_driver.h, ei and libpq), on the same database in the same
// run; and how late a 1 ms Erlang timer fires while `select pg_sleep(0.2)` runs, for both.
// `npm run bench` composes it; `npx tsx bench/drivers.ts` runs it alone. Writes bench/results/drivers.json.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { Epmd, ErlNode, compileErlang, cleanup as harnessCleanup, pgUrl, requirePostgres } from '../integration/harness.js'
import { benchDir, buildDir, findOrInstall, repoRoot, tscEmit, which, type Built } from './build.js'
import { TS_LABEL, machineInfo, type BenchOptions, type BenchPart, type BenchRow } from './report.js'
import { BENCH_COOKIE as COOKIE, ERL_ARGS, Target, stopAllTargets } from './targets.js'

const execFileP = promisify(execFile)
const TS = TS_LABEL
const SEED = 'seed driver'
const outDir = path.join(buildDir, 'drivers')

/** The directory holding erl_driver.h and ei.h, and the one holding libei.a (Debian's erlang-dev). */
async function erlDevDirs(): Promise<{ include: string; lib: string } | undefined> {
  const roots = ['/usr/lib/erlang']
  try {
    const { stdout } = await execFileP('erl', ['-noshell', '-eval', 'io:format("~s", [code:root_dir()]), halt().'])
    roots.unshift(stdout.trim())
  } catch {
    // no erl: the Debian path
  }
  for (const r of roots) {
    const include = path.join(r, 'usr', 'include')
    const lib = path.join(r, 'usr', 'lib')
    if (existsSync(path.join(include, 'erl_driver.h')) && existsSync(path.join(include, 'ei.h')) && existsSync(path.join(lib, 'libei.a')))
      return { include, lib }
  }
  return undefined
}

async function libpqInclude(): Promise<string | undefined> {
  const dirs = ['/usr/include/postgresql', '/usr/include']
  try {
    const { stdout } = await execFileP('pg_config', ['--includedir'])
    dirs.unshift(stdout.trim())
  } catch {
    // pg_config comes with libpq-dev; fall back to the Debian path
  }
  return dirs.find((d) => existsSync(path.join(d, 'libpq-fe.h')))
}

/** bench/build/drivers/pg_sync.so from bench/seed/pg_sync.c; a reason when it cannot be built. */
export async function buildSeedDriver(log: (s: string) => void = () => {}): Promise<Built<string>> {
  if (!(await which('gcc'))) return { ok: false, reason: 'no gcc on PATH (apt-get install gcc) to build the seed driver' }
  const erl = await findOrInstall(erlDevDirs, ['erlang-dev'], 'erl_driver.h / ei.h (Debian erlang-dev) are missing', log)
  if (erl === undefined) return { ok: false, reason: 'erl_driver.h and ei.h not found: apt-get install erlang-dev' }
  const pq = await findOrInstall(libpqInclude, ['libpq-dev'], 'libpq-fe.h (Debian libpq-dev) is missing', log)
  if (pq === undefined) return { ok: false, reason: 'libpq-fe.h not found: apt-get install libpq-dev' }
  mkdirSync(outDir, { recursive: true })
  const so = path.join(outDir, 'pg_sync.so')
  try {
    await execFileP('gcc', [
      '-O2', '-shared', '-fpic', '-o', so, path.join(benchDir, 'seed', 'pg_sync.c'),
      `-I${erl.include}`, `-I${pq}`, `-L${erl.lib}`, '-lei', '-lpq',
    ])
  } catch (e) {
    return { ok: false, reason: `compiling bench/seed/pg_sync.c failed: ${(e as { stderr?: string }).stderr ?? String(e)}` }
  }
  return { ok: true, value: outDir }
}

/** Where tsc puts ts-drivers.ts for a tree (bench/tsconfig.drivers.json). */
export const compiledDriversNode = (root = repoRoot) => path.join(root, 'bench', 'build', 'drivers', 'js', 'bench', 'ts-drivers.js')

/**
 * The node command for the ts-cnode drivers node of a tree: tsc's JavaScript (as the package ships it;
 * through tsx, every closure a request creates would also pay for esbuild's keepNames defineProperty),
 * or `--import tsx` on the sources when tsc produced nothing.
 */
export async function driversNodeArgs(root = repoRoot, log: (s: string) => void = () => {}): Promise<string[]> {
  await tscEmit(path.join(root, 'bench', 'tsconfig.drivers.json'), log, root)
  if (existsSync(compiledDriversNode(root))) return [compiledDriversNode(root)]
  log('tsc produced no bench/build/drivers/js/bench/ts-drivers.js: running the drivers node through tsx instead')
  return ['--import', 'tsx', path.join(root, 'bench', 'ts-drivers.ts')]
}

/** The shipped modules, the seed's Erlang module and the bench loops, into bench/build/drivers/ebin. */
async function buildErlang(): Promise<string> {
  const ebin = path.join(outDir, 'ebin')
  mkdirSync(ebin, { recursive: true })
  const shipped = path.join(repoRoot, 'erlang', 'src')
  return compileErlang(
    [
      ...readdirSync(shipped).filter((f) => f.endsWith('.erl')).map((f) => path.join(shipped, f)),
      path.join(benchDir, 'seed', 'seed_pg_sync.erl'),
      path.join(benchDir, 'erl', 'drivers_bench.erl'),
    ],
    ebin,
  )
}

/** The libpq key/value form of the test database URL (the seed passes such strings to PQconnectdb). */
export function keyValue(url: string): string {
  const u = new URL(url)
  const kv = [`host=${u.hostname}`, `port=${u.port || 5432}`, `dbname=${u.pathname.slice(1) || 'postgres'}`]
  if (u.username) kv.push(`user=${decodeURIComponent(u.username)}`)
  if (u.password) kv.push(`password=${decodeURIComponent(u.password)}`)
  return kv.join(' ')
}

const erlString = (s: string) => JSON.stringify(s)

interface DelayStats {
  samples: number
  medianMs: number
  p99Ms: number
  maxMs: number
}

function delayStats(us: number[]): DelayStats {
  const s = [...us].sort((a, b) => a - b)
  const at = (q: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))] / 1000)
  return { samples: s.length, medianMs: at(0.5), p99Ms: at(0.99), maxMs: s.length === 0 ? 0 : s[s.length - 1] / 1000 }
}

export async function runDriversBench(opts: BenchOptions): Promise<BenchPart> {
  const { log, quick } = opts
  const skipped: string[] = []
  const notes: string[] = []
  await requirePostgres()
  const seed = await buildSeedDriver(log)
  if (!seed.ok) skipped.push(`drivers: the seed driver column: ${seed.reason}`)
  const ebin = await buildErlang()
  const conninfo = keyValue(pgUrl)
  const reps = quick ? 1 : 5
  const measureMs = quick ? 600 : 1000
  const warmMs = 300
  const epmd = await Epmd.start()
  const env = { ERL_EPMD_PORT: String(epmd.port), BENCH_COOKIE: COOKIE, BENCH_TS_NAME: 'bench_drivers' }
  const rows: BenchRow[] = []
  const raw: Record<string, unknown> = {}
  try {
    const ts = await Target.start('the ts-cnode drivers node', process.execPath, await driversNodeArgs(repoRoot, log), env)
    const client = await ErlNode.start({
      name: 'drv_bench_client',
      epmdPort: epmd.port,
      cookie: COOKIE,
      codePath: [ebin],
      args: ERL_ARGS,
      env: { TS_CNODE_NODE: ts.node },
    })
    if (seed.ok) await client.eval(`application:set_env(seed_pg_sync, driver_dir, ${erlString(seed.value)})`)
    const targets: [string, string][] = [[TS, 'pg_sync'], ...(seed.ok ? [[SEED, 'seed_pg_sync'] as [string, string]] : [])]

    const shapes = [
      { name: 'select 1, 1 client', clients: 1, query: 'select 1' },
      { name: 'select 1, 16 clients', clients: 16, query: 'select 1' },
      { name: '100 rows, 16 clients', clients: 16, query: 'select i, md5(i::text) from generate_series(1, 100) i' },
    ]
    for (const shape of shapes) {
      const samples: Record<string, number[]> = Object.fromEntries(targets.map(([t]) => [t, []]))
      const run = async (mod: string, ms: number) => {
        const printed = await client.eval(
          `drivers_bench:throughput(${mod}, ${erlString(conninfo)}, ${shape.clients}, ${erlString(shape.query)}, ${ms})`,
          ms + 60_000,
        )
        const m = /^\{(\d+),(\d+),(\d+)\}$/.exec(printed.trim())
        if (m === null) throw new Error(`unexpected drivers_bench result: ${printed}`)
        if (Number(m[3]) > 0) notes.push(`${shape.name} (${mod}): ${m[3]} selects answered {error, _}`)
        return (Number(m[1]) * 1e6) / Number(m[2])
      }
      for (const [, mod] of targets) await run(mod, warmMs)
      for (let r = 0; r < reps; r++) for (const [t, mod] of targets) samples[t].push(await run(mod, measureMs))
      const best = (t: string) => (samples[t]?.length ? Math.max(...samples[t]) : undefined)
      rows.push({
        section: 'drivers',
        name: shape.name,
        unit: 'selects/s',
        higherIsBetter: true,
        value: best(TS),
        anchors: { [SEED]: best(SEED) },
        samples,
      })
      log(`${shape.name}: ts-cnode ${Math.round(best(TS) ?? 0)}/s, seed driver ${best(SEED) === undefined ? 'n/a' : Math.round(best(SEED)!)}/s`)
    }

    const rounds = quick ? 3 : 5
    const baseline = delayStats((await client.evalTerm('drivers_bench:baseline(500)', 30_000)) as number[])
    raw['timer delay, nothing running'] = baseline
    log(`1 ms timer lateness with nothing running: max ${baseline.maxMs.toFixed(2)} ms (median ${baseline.medianMs.toFixed(2)})`)
    notes.push(
      `drivers: a 1 ms Erlang timer is already late by a median ${baseline.medianMs.toFixed(2)} ms (max ${baseline.maxMs.toFixed(2)} ms) ` +
        'with nothing running (timer granularity); a timer that never fired while the queries ran counts as late as the whole run',
    )
    for (const pin of [true, false]) {
      const stats: Record<string, DelayStats> = {}
      for (const [t, mod] of targets) {
        const delays = (await client.evalTerm(`drivers_bench:timer_delay(${mod}, ${erlString(conninfo)}, ${rounds}, ${pin})`, 60_000)) as number[]
        stats[t] = delayStats(delays)
      }
      raw[`timer delay${pin ? ' (same scheduler)' : ''}`] = stats
      const label = `1 ms timer lateness during pg_sleep(0.2)${pin ? ', same scheduler' : ''}`
      rows.push({
        section: 'drivers',
        name: `${label} (max)`,
        unit: 'ms',
        higherIsBetter: false,
        value: stats[TS]?.maxMs,
        anchors: { [SEED]: stats[SEED]?.maxMs },
        note: `median ts-cnode ${stats[TS]?.medianMs.toFixed(2)} ms${stats[SEED] ? `, seed ${stats[SEED].medianMs.toFixed(2)} ms` : ''}`,
      })
      log(
        `${label}: ts-cnode max ${stats[TS]?.maxMs.toFixed(2)} ms (median ${stats[TS]?.medianMs.toFixed(2)})` +
          (stats[SEED] ? `, seed driver max ${stats[SEED].maxMs.toFixed(2)} ms (median ${stats[SEED].medianMs.toFixed(2)})` : ''),
      )
    }
    notes.push(
      'drivers: each client has its own connection (a session process on ts-cnode, a port on the seed); the seed ' +
        'driver runs PQexec on the calling scheduler thread, ts-cnode answers over the distribution from its own OS process',
    )
    await client.stop()
    await ts.stop()
  } finally {
    await stopAllTargets()
    await harnessCleanup()
  }
  const part: BenchPart = { rows, skipped, notes }
  const resultsDir = path.join(benchDir, 'results')
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(
    path.join(resultsDir, 'drivers.json'),
    JSON.stringify({ started: new Date().toISOString(), quick, machine: await machineInfo(), ...part, raw }, null, 2),
  )
  return part
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const quick = process.env.BENCH_QUICK === '1'
  const part = await runDriversBench({ quick, log: (l) => process.stdout.write(`  ${l}\n`) })
  for (const s of part.skipped ?? []) process.stdout.write(`skipped: ${s}\n`)
  process.stdout.write('wrote bench/results/drivers.json\n')
  process.exit(0)
}
