// Property tests of the codec (fast-check). CI-sized by default; FUZZ_RUNS=N scales them
// (scripts/fuzz-etf.ts runs the same properties for a long time).
import { test } from 'uvu'
import { checkMutatedBytes, checkRandomBytes, checkRoundTrip } from '../../test/etf-properties.js'

const numRuns = Number(process.env.FUZZ_RUNS ?? 2000)
const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED)

test(`property: binaryToTerm(termToBinary(t)) equals t (${numRuns} runs)`, () => {
  checkRoundTrip({ numRuns, seed })
})

test(`property: random bytes only ever throw DecodeError (${numRuns} runs)`, () => {
  checkRandomBytes({ numRuns, seed })
})

test(`property: mutated encodings only ever throw DecodeError, and what decodes re-encodes (${numRuns} runs)`, () => {
  checkMutatedBytes({ numRuns, seed })
})

test.run()
