// Echo round trips, gen_server:call throughput and memory: ts-cnode beside a second BEAM node and an
// erl_interface C-node, all driven by the same Erlang client node (bench/erl/bench_client.erl) in one run.
import { Epmd, ErlNode, cleanup as harnessCleanup, shortHost } from '../integration/harness.js'
import { buildCnode, buildErlang, buildTsNode } from './build.js'
import { measureFloor, FLOOR_BYTES } from './floor.js'
import { TS_LABEL, formatAdvantage, formatNumber, type BenchOptions, type BenchPart, type BenchRow } from './report.js'
import { BENCH_COOKIE as COOKIE, ERL_ARGS, samplePeakRss, stopAllTargets, Target, rssOf } from './targets.js'

const TS = TS_LABEL
const BEAM = 'BEAM'
const EI = 'C-node (ei)'
const MB = 1024 * 1024


interface Shape {
  shape: 'small_tuple' | 'bin_1k' | 'map_100' | 'bin_1m'
  clients: number
  name: string
}

const SHAPES: Shape[] = [
  { shape: 'small_tuple', clients: 1, name: 'small tuple, 1 client' },
  { shape: 'small_tuple', clients: 32, name: 'small tuple, 32 clients' },
  { shape: 'bin_1k', clients: 32, name: '1 KB binary, 32 clients' },
  { shape: 'map_100', clients: 32, name: 'map of 100 entries, 32 clients' },
  { shape: 'bin_1m', clients: 4, name: '1 MB binary, 4 clients' },
]

const IDLE_PROCESSES = 10_000

interface Timing {
  reps: number
  warmMs: number
  measureMs: number
}

/** Round trips (or calls) per second from the {Count, Micros} bench_client prints. */
export function parseRate(printed: string): number {
  const m = /^\{(\d+),(\d+)\}$/.exec(printed.trim())
  if (m === null) throw new Error(`unexpected bench_client result: ${printed}`)
  return (Number(m[1]) * 1e6) / Number(m[2])
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface EchoBenchOptions extends BenchOptions {
  /** Extra `node` arguments for the ts node (e.g. ['--cpu-prof', '--cpu-prof-dir', dir]). */
  tsNodeArgs?: string[]
  /** Only these parts (default: all). */
  only?: Array<'echo' | 'gen_server' | 'memory'>
  /** Only these targets (default: all that build). */
  targets?: string[]
  shapes?: Shape['shape'][]
  timing?: Partial<Timing>
}

export async function runEchoBench(opts: EchoBenchOptions): Promise<BenchPart> {
  const { log } = opts
  const timing: Timing = {
    ...(opts.quick ? { reps: 1, warmMs: 200, measureMs: 600 } : { reps: 5, warmMs: 300, measureMs: 1000 }),
    ...opts.timing,
  }
  const want = (p: 'echo' | 'gen_server' | 'memory') => opts.only === undefined || opts.only.includes(p)
  const skipped: string[] = []
  const notes: string[] = [
    `erl nodes run with ${ERL_ARGS.join(' ')}; each figure is the best of ${timing.reps} interleaved run(s) of ${timing.measureMs} ms after ${timing.warmMs} ms of warm-up (the ratios also give the median run-by-run)`,
  ]
  const rows: BenchRow[] = []

  const ebin = await buildErlang()
  if (!ebin.ok) return { rows, skipped: [`echo, gen_server, memory: ${ebin.reason}`] }
  const cnode = await buildCnode(log)
  if (!cnode.ok) skipped.push(`C-node anchor: ${cnode.reason}`)
  const tsBuild = await buildTsNode(log)

  try {
    const epmd = await Epmd.start()
    const erl = (name: string) =>
      ErlNode.start({ name, epmdPort: epmd.port, cookie: COOKIE, codePath: [ebin.value], args: ERL_ARGS })
    const [client, beam] = await Promise.all([erl('bench_client'), erl('bench_beam')])
    await beam.eval('bench_client:start_echo(), bench_client:start_gen_server()')

    const env = { ERL_EPMD_PORT: String(epmd.port) }
    const ts = await Target.start(
      'the ts-cnode echo node',
      process.execPath,
      ['--expose-gc', ...(opts.tsNodeArgs ?? []), ...tsBuild.nodeArgs, tsBuild.script],
      { ...env, TS_BENCH_NAME: `bench_ts@${shortHost}`, TS_BENCH_COOKIE: COOKIE },
    )
    const ei = cnode.ok
      ? await Target.start('the echo C-node', cnode.value, ['bench_ei', shortHost, COOKIE], env)
      : undefined

    const targets: Array<{ label: string; node: string; pid: number }> = [
      { label: TS, node: ts.node, pid: ts.pid },
      { label: BEAM, node: beam.nodeName, pid: beam.pid as number },
      ...(ei ? [{ label: EI, node: ei.node, pid: ei.pid }] : []),
    ].filter((t) => opts.targets === undefined || opts.targets.includes(t.label))

    // One round trip each: connections are set up before anything is measured.
    for (const t of targets) await client.eval(`bench_client:echo('${t.node}', small_tuple, 1, 0, 1)`)
    await sleep(1000)

    // Memory figures are read after a full collection on both VMs, so they do not depend on when a GC last ran.
    const collect = async () => {
      await client.eval(`ok = erpc:call('${ts.node}', bench, gc, [], 60000)`, 70_000)
      await beam.eval('[erlang:garbage_collect(P) || P <- processes()], ok')
      await sleep(200)
    }
    await collect()
    const rest: Record<string, number> = {}
    for (const t of targets) rest[t.label] = rssOf(t.pid)

    // 10,000 idle processes, before the echo shapes grow the heaps.
    const before: Record<string, number> = {}
    const after: Record<string, number> = {}
    if (want('memory')) {
      const hasTs = targets.some((t) => t.label === TS)
      const hasBeam = targets.some((t) => t.label === BEAM)
      if (hasTs) {
        before[TS] = ts.rss()
        await client.eval(`ok = erpc:call('${ts.node}', bench, spawn_idle, [${IDLE_PROCESSES}], 60000)`, 70_000)
        await sleep(300)
        await collect()
        after[TS] = ts.rss()
        await client.eval(`ok = erpc:call('${ts.node}', bench, stop_idle, [], 60000)`, 70_000)
      }
      if (hasBeam) {
        before[BEAM] = rssOf(beam.pid as number)
        await beam.eval(`bench_client:spawn_idle(${IDLE_PROCESSES})`)
        await sleep(300)
        await collect()
        after[BEAM] = rssOf(beam.pid as number)
        await beam.eval('bench_client:stop_idle()')
      }
    }

    const peak1m: Record<string, number> = {}
    if (want('echo')) {
      for (const s of SHAPES.filter((x) => opts.shapes === undefined || opts.shapes.includes(x.shape))) {
        const samples: Record<string, number[]> = {}
        for (let rep = 0; rep < timing.reps; rep++) {
          for (const t of targets) {
            const sampler = s.shape === 'bin_1m' ? samplePeakRss(t.pid) : undefined
            const printed = await client.eval(
              `bench_client:echo('${t.node}', ${s.shape}, ${s.clients}, ${timing.warmMs}, ${timing.measureMs})`,
              60_000,
            )
            if (sampler) peak1m[t.label] = Math.max(peak1m[t.label] ?? 0, sampler.stop())
            ;(samples[t.label] ??= []).push(parseRate(printed))
          }
        }
        const best = (label: string) => (samples[label] ? Math.max(...samples[label]) : undefined)
        rows.push({
          section: 'echo',
          name: s.name,
          unit: 'round trips/s',
          higherIsBetter: true,
          value: best(TS),
          anchors: { [BEAM]: best(BEAM), ...(ei ? { [EI]: best(EI) } : {}) },
          samples,
        })
        log(`echo ${s.name}: ${targets.map((t) => `${t.label} ${Math.round(best(t.label) ?? 0)}/s`).join(', ')}`)
      }
    }

    // The floor under the 1-client shape (no Erlang): what Node.js itself costs per round trip here.
    if (want('echo') && (opts.shapes === undefined || opts.shapes.includes('small_tuple'))) {
      const floor = await measureFloor(timing)
      if (!floor.ok) skipped.push(`the bare-socket floor: ${floor.reason}`)
      else {
        const { node, c } = floor.value
        // As a row, so the ratio, its median and range are the tables' own (report.ts).
        const C = 'bare C'
        const row: BenchRow = {
          section: 'echo',
          name: 'floor',
          unit: 'round trips/s',
          higherIsBetter: true,
          value: Math.max(...node),
          anchors: { [C]: Math.max(...c) },
          samples: { [TS_LABEL]: node, [C]: c },
        }
        notes.push(
          `floor of the 1-client shape, no Erlang: a C client ping-pongs ${FLOOR_BYTES} bytes over loopback with a bare ` +
            `Node.js server ('data' events, one write per read) at ${formatNumber(row.value)}/s and with a bare C server at ` +
            `${formatNumber(row.anchors[C])}/s (best of ${node.length}, runs interleaved): Node.js alone reaches ` +
            `${formatAdvantage(row, C)} of C; read the 1-client ratio to the C-node against it`,
        )
        log(`floor: bare Node.js ${formatNumber(row.value)}/s, bare C ${formatNumber(row.anchors[C])}/s`)
      }
    }

    if (want('gen_server')) {
      const samples: Record<string, number[]> = {}
      const servers = targets.filter((t) => t.label !== EI)
      for (let rep = 0; rep < timing.reps; rep++) {
        for (const t of servers) {
          const printed = await client.eval(
            `bench_client:call('${t.node}', bench_gs, 32, ${timing.warmMs}, ${timing.measureMs})`,
            60_000,
          )
          ;(samples[t.label] ??= []).push(parseRate(printed))
        }
      }
      const best = (label: string) => (samples[label] ? Math.max(...samples[label]) : undefined)
      rows.push({
        section: 'gen_server',
        name: 'gen_server:call, 32 callers',
        unit: 'calls/s',
        higherIsBetter: true,
        value: best(TS),
        anchors: { [BEAM]: best(BEAM) },
        samples,
      })
      log(`gen_server:call: ${servers.map((t) => `${t.label} ${Math.round(best(t.label) ?? 0)}/s`).join(', ')}`)
    }

    if (want('memory')) {
      rows.push({
        section: 'memory',
        name: 'RSS at rest (connected, idle)',
        unit: 'MB',
        higherIsBetter: false,
        value: rest[TS] && rest[TS] / MB,
        anchors: { [BEAM]: rest[BEAM] && rest[BEAM] / MB, ...(ei ? { [EI]: rest[EI] && rest[EI] / MB } : {}) },
        note:
          'read after a full GC on both VMs; the BEAM figure is a whole emulator (code, schedulers, ets), the C-node has no processes at all',
      })
      rows.push({
        section: 'memory',
        name: `RSS with ${IDLE_PROCESSES.toLocaleString('en-US')} idle processes`,
        unit: 'MB',
        higherIsBetter: false,
        value: after[TS] && after[TS] / MB,
        anchors: { [BEAM]: after[BEAM] && after[BEAM] / MB },
      })
      const perProcess = (l: string) =>
        after[l] !== undefined ? Math.max(0, after[l] - before[l]) / IDLE_PROCESSES : undefined
      rows.push({
        section: 'memory',
        name: 'RSS growth per idle process',
        unit: 'bytes',
        higherIsBetter: false,
        value: perProcess(TS),
        anchors: { [BEAM]: perProcess(BEAM) },
      })
      if (Object.keys(peak1m).length > 0) {
        rows.push({
          section: 'memory',
          name: 'RSS, peak during the 1 MB shape',
          unit: 'MB',
          higherIsBetter: false,
          value: peak1m[TS] && peak1m[TS] / MB,
          anchors: { [BEAM]: peak1m[BEAM] && peak1m[BEAM] / MB, ...(ei ? { [EI]: peak1m[EI] && peak1m[EI] / MB } : {}) },
        })
      }
    }

    await ts.stop()
    await ei?.stop()
    await client.stop()
    await beam.stop()
  } finally {
    await stopAllTargets()
    await harnessCleanup()
  }
  return { rows, skipped, notes }
}
