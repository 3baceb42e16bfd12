// Paired A/B of ts echo node variants: one ts echo node per variant (each its own environment, see
// ts-echo.ts), all driven by the same Erlang client, their measured windows interleaved round by round. For
// each variant: round trips/s and the node's CPU per echo (user + system, every thread, from /proc), and the
// median of the round-by-round ratios against the first variant.
//   AB_VARIANTS='TS_BENCH_FRAGMENTS=1;TS_BENCH_FRAGMENTS=0' AB_SHAPES=bin_1m:4,small_tuple:1 npx tsx bench/ab.ts
//   (AB_ROUNDS=5, AB_MS=2000 per window; a variant is comma-separated NAME=value pairs; empty = defaults;
//   TS_BENCH_SCRIPT=<tree>/bench/build/js/bench/ts-echo.js runs another tree's build, e.g. an older commit's;
//   the variant `cnode` is the erl_interface echo C-node of bench/cnode, whose echoes are counted by the client;
//   AB_OUTPUT=prefix writes what each node printed to prefix.<variant>, e.g. with TS_BENCH_V8_FLAGS=--trace-gc)
import { writeFileSync } from 'node:fs'
import { Epmd, ErlNode, cleanup as harnessCleanup, shortHost } from '../integration/harness.js'
import { buildCnode, buildErlang, buildTsNode } from './build.js'
import { parseRate } from './echo.js'
import { BENCH_COOKIE as COOKIE, ERL_ARGS, cleanupOnSignals, cpuUsOf, median, rssOf, stopAllTargets, Target } from './targets.js'

const variants = (process.env.AB_VARIANTS ?? 'TS_BENCH_DIRECT_READ=1;TS_BENCH_DIRECT_READ=0').split(';')
const shapes = (process.env.AB_SHAPES ?? 'bin_1m:4').split(',').map((s) => {
  const [shape, clients] = s.split(':')
  return { shape, clients: Number(clients ?? 32) }
})
const rounds = Number(process.env.AB_ROUNDS ?? 5)
const ms = Number(process.env.AB_MS ?? 2000)


async function main(): Promise<void> {
  const ebin = await buildErlang()
  if (!ebin.ok) throw new Error(ebin.reason)
  const tsBuild = await buildTsNode(() => {})
  try {
    const epmd = await Epmd.start()
    const client = await ErlNode.start({ name: 'bench_client', epmdPort: epmd.port, cookie: COOKIE, codePath: [ebin.value], args: ERL_ARGS })
    const nodes: Target[] = []
    for (let i = 0; i < variants.length; i++) {
      if (variants[i] === 'cnode') {
        const cnode = await buildCnode()
        if (!cnode.ok) throw new Error(cnode.reason)
        nodes.push(await Target.start('the echo C-node', cnode.value, [`bench_ei${i}`, shortHost, COOKIE], { ERL_EPMD_PORT: String(epmd.port) }))
        continue
      }
      const env: Record<string, string> = { ERL_EPMD_PORT: String(epmd.port), TS_BENCH_NAME: `bench_ts${i}@${shortHost}`, TS_BENCH_COOKIE: COOKIE }
      for (const kv of variants[i].split(',').filter(Boolean)) {
        const eq = kv.indexOf('=')
        const [k, v] = [kv.slice(0, eq), kv.slice(eq + 1)]
        env[k] = v
      }
      // TS_BENCH_SCRIPT: another tree's built ts-echo.js (its bench/build/js/bench/ts-echo.js), to compare commits.
      const script = env.TS_BENCH_SCRIPT ?? tsBuild.script
      nodes.push(await Target.start(`ts echo node ${i}`, process.execPath, [...(env.TS_BENCH_SCRIPT ? [] : tsBuild.nodeArgs), script], env))
    }
    for (const t of nodes) await client.eval(`bench_client:echo('${t.node}', small_tuple, 1, 0, 1)`)
    for (const s of shapes) {
      const rate: number[][] = variants.map(() => [])
      const cpu: number[][] = variants.map(() => [])
      const rss: number[][] = variants.map(() => [])
      for (let r = 0; r < rounds; r++)
        for (let i = 0; i < nodes.length; i++) {
          const T = `'${nodes[i].node}'`
          const isTs = variants[i] !== 'cnode'
          await client.eval(`bench_client:echo(${T}, ${s.shape}, ${s.clients}, 0, 300)`)
          const n0 = isTs ? Number(await client.eval(`erpc:call(${T}, bench, echoed, [])`)) : 0
          const c0 = cpuUsOf(nodes[i].pid)
          const printed = await client.eval(`bench_client:echo(${T}, ${s.shape}, ${s.clients}, 0, ${ms})`, 60_000)
          const c1 = cpuUsOf(nodes[i].pid)
          rss[i].push(rssOf(nodes[i].pid))
          const n1 = isTs ? Number(await client.eval(`erpc:call(${T}, bench, echoed, [])`)) : 0
          rate[i].push(parseRate(printed))
          // The two erpc calls in the window count as echoed messages too; the C-node has no counter of
          // its own, so its count is the client's (rate x window).
          const echoes = isTs ? n1 - n0 - 2 : (parseRate(printed) * ms) / 1000
          cpu[i].push((c1 - c0) / Math.max(1, echoes))
        }
      process.stdout.write(`\n${s.shape}, ${s.clients} client(s): ${rounds} rounds of ${ms} ms\n`)
      for (let i = 0; i < variants.length; i++) {
        const vs =
          i === 0
            ? ''
            : `  rate vs variant 0: ${median(rate[i].map((x, k) => x / rate[0][k])).toFixed(2)}x, CPU vs variant 0: ${median(cpu[i].map((x, k) => x / cpu[0][k])).toFixed(2)}x (medians of paired rounds)`
        process.stdout.write(
          `  ${i} ${variants[i] || '(defaults)'}: ${median(rate[i]).toFixed(0)} round trips/s, ${median(cpu[i]).toFixed(1)} µs CPU per echo, RSS ${(median(rss[i]) / 2 ** 20).toFixed(0)} MB at the window's end (medians)${vs}\n`,
        )
      }
    }
    for (const t of nodes) await t.stop()
    const prefix = process.env.AB_OUTPUT
    if (prefix) nodes.forEach((t, i) => writeFileSync(`${prefix}.${i}`, t.output))
    await client.stop()
  } finally {
    await stopAllTargets()
    await harnessCleanup()
  }
}

cleanupOnSignals()
await main()
process.exit(0)
