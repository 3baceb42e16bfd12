// Long fuzz run of the ETF codec: the property tests of src/etf/props.test.ts with many more runs.
//   npx tsx scripts/fuzz-etf.ts [runs]     (default: FUZZ_RUNS or 200000 per property)
// A failure prints its seed and path: FUZZ_SEED=<seed> FUZZ_PATH=<path> replays exactly that case.
import { checkMutatedBytes, checkRandomBytes, checkRoundTrip } from '../test/etf-properties.js'

const numRuns = Number(process.argv[2] ?? process.env.FUZZ_RUNS ?? 200_000)
const seed = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED)
const path = process.env.FUZZ_PATH
console.log(`fuzz-etf: ${numRuns} runs per property, seed ${seed} (FUZZ_SEED=${seed} replays)`)

const properties: [string, typeof checkRoundTrip][] = [
  ['round trip: binaryToTerm(termToBinary(t)) equals t', checkRoundTrip],
  ['random bytes only throw DecodeError', checkRandomBytes],
  ['mutated encodings only throw DecodeError', checkMutatedBytes],
]

let failed = 0
for (const [name, check] of properties) {
  const t0 = performance.now()
  try {
    check({ numRuns, seed, path })
    console.log(`ok   ${name}: ${numRuns} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  } catch (e) {
    failed++
    console.log(`FAIL ${name}:\n${(e as Error).message}`)
  }
}
process.exitCode = failed === 0 ? 0 : 1
