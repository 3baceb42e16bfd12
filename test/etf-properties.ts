// fast-check arbitraries for terms and the codec's properties. Shared by src/etf/props.test.ts
// (CI-sized runs) and scripts/fuzz-etf.ts (long runs).
import fc from 'fast-check'
import {
  Atom,
  BitBinary,
  ExportFun,
  Float,
  Fun,
  ImproperList,
  Pid,
  Port,
  Ref,
  Tuple,
  atom,
  termEquals,
  termHash,
  type Term,
} from '../src/etf/terms.js'
import { binaryToTerm, decodeTerm } from '../src/etf/decode.js'
import { termToBinary, termToChunks } from '../src/etf/encode.js'
import { DecodeError } from '../src/etf/errors.js'

const u32 = fc.integer({ min: 0, max: 0xffffffff })

// 'true' and 'false' are booleans in the term model, never Atoms.
export const atomArb: fc.Arbitrary<Atom> = fc
  .oneof(
    fc.constantFrom('ok', 'error', 'undefined', 'nonode@nohost', '', '$gen_call'),
    fc.string({ unit: 'binary-ascii', maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 255 }),
  )
  .filter((s) => s !== 'true' && s !== 'false')
  .map(atom)

const integerArb: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.bigInt({ min: -(2n ** 3000n), max: 2n ** 3000n }),
)

const floatArb: fc.Arbitrary<number | Float> = fc
  .double({ noNaN: true, noDefaultInfinity: true })
  .map((v) => (Number.isInteger(v) ? new Float(v) : v))

const binaryArb: fc.Arbitrary<Buffer> = fc
  .oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 65, maxLength: 300 }))
  .map((u) => Buffer.from(u))

const bitBinaryArb: fc.Arbitrary<BitBinary> = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 120 }), fc.integer({ min: 1, max: 7 }))
  .map(([d, bits]) => {
    const b = Buffer.from(d)
    b[b.length - 1] &= (0xff << (8 - bits)) & 0xff
    return new BitBinary(b, bits)
  })

const stringArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
)

const pidArb = fc.tuple(atomArb, u32, u32, u32).map(([n, i, s, c]) => new Pid(n, i, s, c))
const portArb = fc
  .tuple(atomArb, fc.oneof(fc.bigInt({ min: 0n, max: 0xffffffffn }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), u32)
  .map(([n, i, c]) => new Port(n, i, c))
const refArb = fc.tuple(atomArb, u32, fc.array(u32, { maxLength: 5 })).map(([n, c, ids]) => new Ref(n, c, ids))
const exportArb = fc
  .tuple(atomArb, atomArb, fc.integer({ min: 0, max: 255 }))
  .map(([m, f, a]) => new ExportFun(m, f, a))

const leafArb: fc.Arbitrary<Term> = fc.oneof(
  atomArb,
  fc.boolean(),
  integerArb,
  floatArb,
  binaryArb,
  bitBinaryArb,
  stringArb,
  pidArb,
  portArb,
  refArb,
  exportArb,
  fc.constant([] as Term[]),
)

export const termArb: fc.Arbitrary<Term> = fc.letrec<{ term: Term; nonList: Term }>((tie) => ({
  term: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'term' },
    { arbitrary: leafArb, weight: 6 },
    { arbitrary: fc.array(tie('term'), { maxLength: 5 }), weight: 2 },
    { arbitrary: fc.array(tie('term'), { maxLength: 5 }).map((e) => new Tuple(e)), weight: 2 },
    {
      arbitrary: fc
        .tuple(fc.array(tie('term'), { minLength: 1, maxLength: 4 }), tie('nonList'))
        .map(([e, t]) => new ImproperList(e, t)),
      weight: 1,
    },
    {
      arbitrary: fc
        .uniqueArray(fc.tuple(tie('term'), tie('term')), { maxLength: 5, comparator: ([a], [b]) => termEquals(a, b) })
        .map((entries) => new Map(entries)),
      weight: 1,
    },
    {
      arbitrary: fc
        .record({
          arity: fc.integer({ min: 0, max: 255 }),
          uniq: fc.uint8Array({ minLength: 16, maxLength: 16 }),
          index: u32,
          module: atomArb,
          oldIndex: fc.integer({ min: 0, max: 0x7fffffff }),
          oldUniq: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
          pid: pidArb,
          free: fc.array(tie('term'), { maxLength: 3 }),
        })
        .map((f) => new Fun(f.arity, Buffer.from(f.uniq), f.index, f.module, f.oldIndex, f.oldUniq, f.pid, f.free)),
      weight: 1,
    },
  ),
  // A tail that is not a list (lists and strings as tails merge into the list).
  nonList: fc.oneof(atomArb, integerArb, binaryArb, tie('term').map((t) => new Tuple([t]))),
})).term

export interface RunOptions {
  numRuns: number
  seed?: number
  /** fast-check's replay path of a failure (with its seed). */
  path?: string
}

const params = (o: RunOptions): fc.Parameters<unknown> => ({ numRuns: o.numRuns, seed: o.seed, path: o.path, endOnFailure: true })

/** decode(encode(t)) is =:= t, for both encoder outputs and with compression. */
export function checkRoundTrip(o: RunOptions): void {
  fc.assert(
    fc.property(termArb, fc.boolean(), (t, compressed) => {
      const bytes = termToBinary(t, compressed ? { compressed: true } : undefined)
      const back = binaryToTerm(bytes)
      // termHash agrees with termEquals across the JS forms decoding gives (map key sets rely on it).
      if (!termEquals(back, t) || termHash(back) !== termHash(t)) return false
      const chunks = Buffer.concat(termToChunks(t))
      return compressed || chunks.equals(bytes)
    }),
    params(o) as fc.Parameters<[Term, boolean]>,
  )
}

/** Decoding either succeeds or throws a DecodeError; anything it returns re-encodes to an equal term. */
export function onlyDecodeErrors(bytes: Buffer, versioned: boolean): boolean {
  let t: Term
  try {
    t = versioned ? binaryToTerm(bytes) : decodeTerm(bytes, 0).term
  } catch (e) {
    if (e instanceof DecodeError) return true
    throw new Error(`decoding ${bytes.toString('hex')} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`)
  }
  let again: Buffer
  try {
    again = termToBinary(t)
  } catch (e) {
    throw new Error(`decoded ${bytes.toString('hex')} but re-encoding threw ${(e as Error)?.message}`)
  }
  // The decoder refuses maps with two =:= keys however they are encoded, so what it returns re-encodes to
  // a term that decodes =:= to it.
  if (!termEquals(binaryToTerm(again), t))
    throw new Error(`decoded ${bytes.toString('hex')}; its re-encoding ${again.toString('hex')} decodes differently`)
  return true
}

/** Random bytes (with and without a version byte) only ever produce DecodeError. */
export function checkRandomBytes(o: RunOptions): void {
  const tagged = fc
    .tuple(fc.constantFrom(...tagBytes), fc.uint8Array({ maxLength: 60 }))
    .map(([tag, rest]) => Buffer.concat([Buffer.from([131, tag]), rest]))
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)), tagged), fc.boolean(), onlyDecodeErrors),
    params(o) as fc.Parameters<[Buffer, boolean]>,
  )
}

const tagBytes = [
  70, 77, 80, 82, 88, 89, 90, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114,
  115, 116, 117, 118, 119, 120, 121,
]

type Mutation = { kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate'; at: number; byte: number }
export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
})

export function mutate(src: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(src)
  for (const m of ms) {
    if (b.length === 0) break
    const at = m.at % b.length
    switch (m.kind) {
      case 'flip':
        b[at] ^= 1 << (m.byte & 7)
        break
      case 'set':
        b[at] = m.byte
        break
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)])
        break
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)])
        break
      case 'truncate':
        b = b.subarray(0, at)
        break
    }
  }
  return b
}

/** Valid encodings with a few bytes flipped, set, inserted, deleted or cut off only produce DecodeError. */
export function checkMutatedBytes(o: RunOptions): void {
  fc.assert(
    fc.property(termArb, fc.boolean(), fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (t, compressed, ms) =>
      onlyDecodeErrors(mutate(termToBinary(t, compressed ? { compressed: 1 } : undefined), ms), true),
    ),
    params(o) as fc.Parameters<[Term, boolean, Mutation[]]>,
  )
}
