// Where a select's CPU goes, and A/B comparisons of driver changes measured turn by turn in one run.
// Each target keeps its client connections open between measured runs, so every run is charged to the OS
// processes that served it: the ts-cnode node (/proc/<pid>/stat), the client emulator and the Postgres
// backends of that target's connections. Optionally the ts nodes run under `node --cpu-prof` and each
// shape's windows are attributed to functions.
//   npx tsx bench/drivers-profile.ts
//   PROF_TREES=A=/tmp/tree-a,B=.   two ts-cnode trees (each with src/, bench/ts-drivers.ts, erlang/src/),
//                                  measured in turn (default: this tree, labelled ts-cnode)
//                                  label=dir@tsx runs that tree through tsx, label=dir@js from tsc's output
//                                  (bench/tsconfig.drivers.json; the default, PROF_TSX=1 makes tsx the default)
//   PROF_SEED=0                    leave out the seed's linked-in driver (default: measured too)
//   PROF_SHAPES=select1:16,rows100:16,select1:1   PROF_SECONDS=2   PROF_ROUNDS=4
//   PROF_NODE_ARGS=--perf-basic-prof   more node flags for the ts nodes
//   PROF_ERL_ARGS="+JPperf true"        more erl flags for the client emulator
//   PROF_CPU=1                     --cpu-prof the ts nodes; the .cpuprofile files stay in bench/build/drivers-profile/
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import * as path from 'node:path'
import { Epmd, ErlNode, compileErlang, cleanup as harnessCleanup, pgUrl, requirePostgres } from '../integration/harness.js'
import { buildSeedDriver, driversNodeArgs, keyValue } from './drivers.js'
import { benchDir, buildDir, repoRoot } from './build.js'
import { area, attribute, top, where, type Attribution, type CpuProfile, type Places } from './cpuprofile.js'
import { BENCH_COOKIE as COOKIE, ERL_ARGS, cleanupOnSignals, cpuOf, cpuUsOf as cpuUs, median, stopAllTargets, Target } from './targets.js'

const SHAPES: Record<string, string> = {
  select1: 'select 1',
  rows100: 'select i, md5(i::text) from generate_series(1, 100) i',
}

/** read and write syscalls of a process so far (/proc/<pid>/io syscr, syscw). */
function syscalls(pid: number): { r: number; w: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8')
    return { r: Number(/syscr: (\d+)/.exec(io)![1]), w: Number(/syscw: (\d+)/.exec(io)![1]) }
  } catch {
    return { r: 0, w: 0 }
  }
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n)

/** The counters a run is charged with: CPU µs (and its sys part) and read/write syscalls of the ts node (when there is one) and the client emulator, CPU µs of the Postgres backends. */
function snapshot(tsPid: number | undefined, beamPid: number, pgPids: number[]) {
  // One read of /proc/<pid>/stat per process: total and sys from the same moment.
  const { total: ts, sys: tsSys } = tsPid !== undefined ? cpuOf(tsPid) : { total: 0, sys: 0 }
  const tsIo = tsPid !== undefined ? syscalls(tsPid) : { r: 0, w: 0 }
  const { total: beam, sys: beamSys } = cpuOf(beamPid)
  const beamIo = syscalls(beamPid)
  const pg = pgPids.reduce((s, p) => s + cpuUs(p), 0)
  return { ts, tsSys, tsReads: tsIo.r, tsWrites: tsIo.w, beam, beamSys, beamReads: beamIo.r, beamWrites: beamIo.w, pg }
}
type Counters = ReturnType<typeof snapshot>

/** (after - before) / n, counter by counter. */
function perSelect(before: Counters, after: Counters, n: number): Counters {
  const keys = Object.keys(after) as (keyof Counters)[]
  return Object.fromEntries(keys.map((k) => [k, (after[k] - before[k]) / n])) as Counters
}

/** How a tree's places are named: node_modules/<package>/..., src/..., bench/... (tsc's output as its source; the line is the JavaScript's). */
function places(root: string): Places {
  const file = (url: string) => {
    const nm = url.lastIndexOf('/node_modules/')
    if (nm >= 0) url = url.slice(nm + 1)
    else if (url.startsWith(root + '/')) url = url.slice(root.length + 1)
    return url.replace(/^bench\/build\/drivers\/js\//, '')
  }
  return {
    where: (cf) => where(cf, file),
    area: (w) => area(w, { node: (m) => `node:${m}`, packages: true }),
    isCaller: (w) => w.startsWith('src/') || w.startsWith('node_modules/pg'),
    noCaller: '(no src/ or pg frame)',
  }
}

function attributionReport(a: Attribution, selects: number, topN: number): string {
  const per = (us: number) => (us / selects).toFixed(2).padStart(7)
  const pct = (us: number) => ((100 * us) / Math.max(1, a.busyUs)).toFixed(1).padStart(5)
  return [
    `   profile: busy ${per(a.busyUs)} µs/select, idle ${(a.idleUs / 1000).toFixed(0)} ms`,
    '   -- by area (self time) --',
    ...top(a.byArea, 14).map(([k, us]) => `   ${pct(us)}% ${per(us)} µs  ${k}`),
    `   -- top ${topN} functions (self time) --`,
    ...top(a.byFunction, topN).map(([k, us]) => `   ${pct(us)}% ${per(us)} µs  ${k}`),
    `   -- top ${topN} src/ or pg callers (with the native and node: time below them) --`,
    ...top(a.byCaller, topN).map(([k, us]) => `   ${pct(us)}% ${per(us)} µs  ${k}`),
  ].join('\n')
}

interface TargetSpec {
  label: string
  /** ts-cnode tree, or undefined for the seed driver. */
  root?: string
  /** node arguments that run the tree's ts-drivers node. */
  nodeArgs?: string[]
  ts?: Target
  ebin?: string
  /** Per shape, per measured run: selects/s, the counters per select, the run's window and its selects. */
  samples: Map<string, (Counters & { rate: number; windows: [number, number][]; selects: number })[]>
}

async function main(): Promise<void> {
  const seconds = Number(process.env.PROF_SECONDS ?? 2)
  const rounds = Number(process.env.PROF_ROUNDS ?? 4)
  const cpuProf = process.env.PROF_CPU === '1'
  const shapes = (process.env.PROF_SHAPES ?? 'select1:16,rows100:16,select1:1').split(',').map((s) => {
    const [name, clients] = s.split(':')
    if (!(name in SHAPES)) throw new Error(`unknown shape ${name} (${Object.keys(SHAPES).join(', ')})`)
    return { name, query: SHAPES[name], clients: Number(clients ?? 16) }
  })
  const trees = (process.env.PROF_TREES ?? `ts-cnode=${repoRoot}`).split(',').map((s) => {
    const [label, spec] = s.split('=')
    const [dir, how] = spec.split('@')
    return { label, root: path.resolve(dir), compiled: (how ?? (process.env.PROF_TSX === '1' ? 'tsx' : 'js')) === 'js' }
  })
  const log = (s: string) => process.stdout.write(`${s}\n`)
  await requirePostgres()
  const outDir = path.join(buildDir, 'drivers-profile')
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })

  const targets: TargetSpec[] = []
  for (const t of trees) {
    // Each tree's own Erlang modules, loaded into the client before that tree's turn.
    const ebin = path.join(outDir, `ebin-${t.label}`)
    mkdirSync(ebin, { recursive: true })
    const src = path.join(t.root, 'erlang', 'src')
    await compileErlang(readdirSync(src).filter((f) => f.endsWith('.erl')).map((f) => path.join(src, f)), ebin)
    const nodeArgs = t.compiled ? await driversNodeArgs(t.root, log) : ['--import', 'tsx', path.join(t.root, 'bench', 'ts-drivers.ts')]
    targets.push({ label: t.label, root: t.root, nodeArgs, ebin, samples: new Map() })
  }
  const seed = process.env.PROF_SEED === '0' ? undefined : await buildSeedDriver()
  if (seed && !seed.ok) log(`seed driver left out: ${seed.reason}`)
  if (seed?.ok) targets.push({ label: 'seed', samples: new Map() })
  const common = path.join(outDir, 'ebin')
  mkdirSync(common, { recursive: true })
  // drivers_prof runs drivers_bench's select loop
  await compileErlang(
    [path.join(benchDir, 'erl', 'drivers_prof.erl'), path.join(benchDir, 'erl', 'drivers_bench.erl'), path.join(benchDir, 'seed', 'seed_pg_sync.erl')],
    common,
  )

  const epmd = await Epmd.start()
  const conninfo = keyValue(pgUrl)
  try {
    for (const [i, t] of targets.entries()) {
      if (t.root === undefined) continue
      const prof = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.join(outDir, `prof-${t.label}`)] : []
      // PROF_NODE_ARGS: more node flags for the ts nodes (e.g. --perf-basic-prof for `perf record`)
      prof.push(...(process.env.PROF_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''))
      t.ts = await Target.start(
        `the ts-cnode drivers node ${t.label}`,
        process.execPath,
        [...prof, ...t.nodeArgs!],
        { ERL_EPMD_PORT: String(epmd.port), BENCH_COOKIE: COOKIE, BENCH_TS_NAME: `prof_drivers_${i}` },
      )
    }
    const client = await ErlNode.start({ name: 'drv_prof_client', epmdPort: epmd.port, cookie: COOKIE, codePath: [common], args: [...ERL_ARGS, ...(process.env.PROF_ERL_ARGS ?? '').split(' ').filter((a) => a !== '')] })
    const beamPid = Number(await client.eval('list_to_integer(os:getpid())'))
    log(`client beam pid ${beamPid}; ts nodes: ${targets.filter((t) => t.ts).map((t) => `${t.label} pid ${t.ts!.pid}`).join(', ')}`)
    if (seed?.ok) await client.eval(`application:set_env(seed_pg_sync, driver_dir, ${JSON.stringify(seed.value)})`)
    let loaded: string | undefined
    const use = async (t: TargetSpec) => {
      if (t.ebin === undefined || loaded === t.ebin) return
      const mods = readdirSync(t.ebin).filter((f) => f.endsWith('.beam')).map((f) => f.slice(0, -5))
      await client.eval(
        `[begin code:purge(M), {module, M} = code:load_abs(filename:join(${JSON.stringify(t.ebin)}, M)) end || M <- [${mods.join(',')}]], ok`,
      )
      await client.eval(`application:set_env(ts_cnode, node, '${t.ts!.node}')`)
      loaded = t.ebin
    }
    const mod = (t: TargetSpec) => (t.root === undefined ? 'seed_pg_sync' : 'pg_sync')
    const pool = (t: TargetSpec) => `${t.label.replace(/\W/g, '_').toLowerCase()}_pool`

    for (const shape of shapes) {
      const key = `${shape.name}:${shape.clients}`
      const backends = new Map<TargetSpec, number[]>()
      for (const t of targets) {
        await use(t)
        await client.eval(`drivers_prof:open(${pool(t)}, ${mod(t)}, ${JSON.stringify(conninfo)}, ${shape.clients})`, 60_000)
        backends.set(t, JSON.parse((await client.eval(`drivers_prof:backend_pids(${pool(t)})`)).replace(/\s/g, '')))
        t.samples.set(key, [])
      }
      const runOnce = async (t: TargetSpec, ms: number) => {
        await use(t)
        const pgPids = backends.get(t)!
        const c0 = snapshot(t.ts?.pid, beamPid, pgPids)
        const w0 = nowUs()
        const printed = await client.eval(`drivers_prof:run(${pool(t)}, ${JSON.stringify(shape.query)}, ${ms})`, ms + 60_000)
        const w1 = nowUs()
        const c1 = snapshot(t.ts?.pid, beamPid, pgPids)
        const m = /^\{(\d+),(\d+),(\d+)\}$/.exec(printed.trim())
        if (m === null) throw new Error(`unexpected drivers_prof result: ${printed}`)
        if (Number(m[3]) > 0) log(`  ${t.label} ${key}: ${m[3]} selects answered {error, _}`)
        const n = Number(m[1])
        return { rate: (n * 1e6) / Number(m[2]), ...perSelect(c0, c1, n), windows: [[w0, w1]] as [number, number][], selects: n }
      }
      for (const t of targets) await runOnce(t, 300)
      for (let r = 0; r < rounds; r++) {
        // Alternate the order so neither target always runs right after the other.
        const order = r % 2 === 0 ? targets : [...targets].reverse()
        for (const t of order) t.samples.get(key)!.push(await runOnce(t, seconds * 1000))
      }
      for (const t of targets) {
        await use(t)
        await client.eval(`drivers_prof:close(${pool(t)})`, 30_000)
      }
      log(`\n== ${shape.query}, ${shape.clients} client(s): selects/s per round, and CPU µs per select (median of rounds)`)
      for (const t of targets) {
        const s = t.samples.get(key)!
        const med = (f: (x: (typeof s)[number]) => number) => median(s.map(f))
        log(
          `${t.label.padEnd(10)} ${s.map((x) => Math.round(x.rate).toString().padStart(6)).join(' ')}  | median ${Math.round(med((x) => x.rate))}/s` +
            `  | CPU/select: ts node ${med((x) => x.ts).toFixed(1)} (sys ${med((x) => x.tsSys).toFixed(1)}), client beam ${med((x) => x.beam).toFixed(1)} (sys ${med((x) => x.beamSys).toFixed(1)}), pg backends ${med((x) => x.pg).toFixed(1)}, total ${med((x) => x.ts + x.beam + x.pg).toFixed(1)} µs` +
            (t.ts ? `  | ts node syscalls/select: read ${med((x) => x.tsReads).toFixed(2)}, write ${med((x) => x.tsWrites).toFixed(2)}` : '') +
            `  | client beam syscalls/select: read ${med((x) => x.beamReads).toFixed(2)}, write ${med((x) => x.beamWrites).toFixed(2)}`,
        )
      }
    }
    await client.stop()
    for (const t of targets) await t.ts?.stop(30_000)
  } finally {
    await stopAllTargets()
    await harnessCleanup()
  }
  if (!cpuProf) return
  for (const t of targets) {
    if (t.root === undefined) continue
    const dir = path.join(outDir, `prof-${t.label}`)
    const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) : undefined
    if (file === undefined) {
      log(`no profile for ${t.label}`)
      continue
    }
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile
    const treePlaces = places(t.root)
    for (const [key, s] of t.samples) {
      const a = attribute(profile, s.flatMap((x) => x.windows), treePlaces)
      log(`\n== ${t.label}, ${key}: ${s.reduce((n, x) => n + x.selects, 0)} selects`)
      log(attributionReport(a, s.reduce((n, x) => n + x.selects, 0), 25))
    }
    log(`profile: ${path.relative(repoRoot, path.join(dir, file))}`)
  }
}

cleanupOnSignals()
await main()
process.exit(0)
