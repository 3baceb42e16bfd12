// Where the ts-cnode echo spends its time per message: runs the ts echo node under `node --cpu-prof`, drives
// it with the Erlang bench client shape by shape, and attributes the profile's samples inside each shape's
// measured window (bench:clock() gives the profile's clock) to functions and to source areas.
//   npx tsx bench/profile.ts            (PROFILE_SECONDS=5, PROFILE_SHAPES=small_tuple:32,map_100:32,gen_call:32,...,
//                                        PROFILE_IDLE=10000: spawn and stop that many processes first)
// The .cpuprofile files stay in bench/build/profile/ (open them in Chrome DevTools or speedscope).
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import * as path from 'node:path'
import { Epmd, ErlNode, cleanup as harnessCleanup, shortHost } from '../integration/harness.js'
import { buildDir, buildErlang, buildTsNode, repoRoot } from './build.js'
import { area, attribute, top, where, type CpuProfile, type Places } from './cpuprofile.js'
import { BENCH_COOKIE as COOKIE, ERL_ARGS, cleanupOnSignals, stopAllTargets, Target } from './targets.js'


interface Window {
  label: string
  fromUs: number
  toUs: number
  messages: number
}

/** A project file from the repository root: src/dist/framer.ts (also for tsc's output of it in bench/build/js). */
function projectFile(url: string): string {
  const js = path.join(buildDir, 'js') + path.sep
  if (url.startsWith(js)) return url.slice(js.length).replace(/\.js$/, '.ts')
  if (url.startsWith(repoRoot + path.sep)) return url.slice(repoRoot.length + 1)
  return url
}

const places: Places = {
  where: (cf) => where(cf, projectFile),
  area: (w) => area(w, { node: (m) => `node internals (${m})`, packages: false }),
  isCaller: (w) => w.startsWith('src/') || w.startsWith('bench/'),
  noCaller: '(no project frame: event loop, GC, startup)',
}

function report(profile: CpuProfile, w: Window, topN = 20): string {
  const a = attribute(profile, [[w.fromUs, w.toUs]], places)
  const perMsg = (us: number) => (w.messages > 0 ? us / w.messages : NaN)
  const pct = (us: number) => ((100 * us) / Math.max(1, a.busyUs)).toFixed(1).padStart(5)
  const lines = [
    `== ${w.label}: ${w.messages} messages echoed in ${((w.toUs - w.fromUs) / 1e6).toFixed(2)} s; ` +
      `ts node busy ${(a.busyUs / 1000).toFixed(0)} ms (${perMsg(a.busyUs).toFixed(2)} µs CPU per message), idle ${(a.idleUs / 1000).toFixed(0)} ms`,
    '-- by area (self time) --',
    ...top(a.byArea, 12).map(([k, us]) => `${pct(us)}%  ${perMsg(us).toFixed(2).padStart(7)} µs/msg  ${k}`),
    `-- top ${topN} functions (self time) --`,
    ...top(a.byFunction, topN).map(([k, us]) => `${pct(us)}%  ${perMsg(us).toFixed(2).padStart(7)} µs/msg  ${k}`),
    `-- top ${topN} project functions, charged with the native and node: time they call into --`,
    ...top(a.byCaller, topN).map(([k, us]) => `${pct(us)}%  ${perMsg(us).toFixed(2).padStart(7)} µs/msg  ${k}`),
  ]
  return lines.join('\n')
}

async function main(): Promise<void> {
  const seconds = Number(process.env.PROFILE_SECONDS ?? 5)
  const shapes = (process.env.PROFILE_SHAPES ?? 'small_tuple:32,small_tuple:1,bin_1k:32,map_100:32,bin_1m:4')
    .split(',')
    .map((s) => {
      const [shape, clients] = s.split(':')
      return { shape, clients: Number(clients ?? 32) }
    })
  const log = (s: string) => process.stdout.write(`  ${s}\n`)
  const ebin = await buildErlang()
  if (!ebin.ok) throw new Error(ebin.reason)
  const tsBuild = await buildTsNode(log)
  const profDir = path.join(buildDir, 'profile')
  rmSync(profDir, { recursive: true, force: true })
  mkdirSync(profDir, { recursive: true })

  const windows: Window[] = []
  try {
    const epmd = await Epmd.start()
    const client = await ErlNode.start({
      name: 'bench_client',
      epmdPort: epmd.port,
      cookie: COOKIE,
      codePath: [ebin.value],
      args: ERL_ARGS,
    })
    const ts = await Target.start(
      'the ts-cnode echo node',
      process.execPath,
      ['--cpu-prof', '--cpu-prof-dir', profDir, ...tsBuild.nodeArgs, tsBuild.script],
      { ERL_EPMD_PORT: String(epmd.port), TS_BENCH_NAME: `bench_ts@${shortHost}`, TS_BENCH_COOKIE: COOKIE },
    )
    const T = `'${ts.node}'`
    const num = async (expr: string) => Number(await client.eval(expr))
    await client.eval(`bench_client:echo(${T}, small_tuple, 1, 0, 1)`)
    const idle = Number(process.env.PROFILE_IDLE ?? 0)
    if (idle > 0) {
      await client.eval(`ok = erpc:call(${T}, bench, spawn_idle, [${idle}], 60000)`, 70_000)
      await client.eval(`ok = erpc:call(${T}, bench, stop_idle, [], 60000)`, 70_000)
      log(`spawned and stopped ${idle} processes`)
    }
    for (const s of shapes) {
      // Warm-up outside the window, then the measured window between two clock readings.
      // gen_call:N profiles gen_server:call from N callers to bench_gs; any other shape is an echo shape.
      const drive = (ms: number) =>
        s.shape === 'gen_call'
          ? `bench_client:call(${T}, bench_gs, ${s.clients}, 0, ${ms})`
          : `bench_client:echo(${T}, ${s.shape}, ${s.clients}, 0, ${ms})`
      await client.eval(drive(500))
      const n0 = await num(`erpc:call(${T}, bench, echoed, [])`)
      const t0 = await num(`erpc:call(${T}, bench, clock, [])`)
      const printed = await client.eval(drive(seconds * 1000), 120_000)
      const t1 = await num(`erpc:call(${T}, bench, clock, [])`)
      const n1 = await num(`erpc:call(${T}, bench, echoed, [])`)
      windows.push({ label: `${s.shape}, ${s.clients} client(s)`, fromUs: t0, toUs: t1, messages: n1 - n0 })
      log(`${s.shape} x${s.clients}: ${printed}`)
    }
    await ts.stop(30_000)
    await client.stop()
  } finally {
    await stopAllTargets()
    await harnessCleanup()
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`no .cpuprofile in ${profDir}: did the ts node exit cleanly?`)
  const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile
  for (const w of windows) process.stdout.write('\n' + report(profile, w) + '\n')
  process.stdout.write(`\nprofile: ${path.relative(repoRoot, path.join(profDir, file))}\n`)
}

cleanupOnSignals()
await main()
process.exit(0)
