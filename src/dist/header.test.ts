import { test } from 'uvu'
import fc from 'fast-check'
import * as assert from 'uvu/assert'
import { atom, Pid, termEquals, Tuple, type Term } from '../etf/terms.js'
import { EncodeError } from '../etf/errors.js'
import { MalformedFrameError } from './errors.js'
import { DEFAULT_FLAGS, DFLAG_DIST_HDR_ATOM_CACHE, DFLAG_FRAGMENTS, MANDATORY_25 } from './flags.js'

/** The default flags with fragments agreed (they are offered only on request). */
const FLAGS = DEFAULT_FLAGS | DFLAG_FRAGMENTS
import { Framer } from './framer.js'
import { DistReader, DistWriter, PASS_THROUGH } from './header.js'

/** The frames (length prefix removed) in the Buffers a DistWriter produced. */
function frames(out: Buffer[]): Buffer[] {
  const f = new Framer({ maxFrameSize: 1 << 30 })
  f.push(Buffer.concat(out))
  const res: Buffer[] = []
  for (let m = f.next(); m !== undefined; m = f.next()) res.push(m)
  assert.is(f.buffered, 0)
  return res
}

function readAll(r: DistReader, fs: Buffer[]) {
  const msgs = []
  for (const f of fs) {
    const m = r.read(f)
    if (m) msgs.push(m)
  }
  return msgs
}

const me = atom('ts@host')
const pid = new Pid(me, 42, 0, 7)
const control = new Tuple([6, pid, atom(''), atom('net_kernel')])
const payload: Term = new Tuple([atom('$gen_call'), new Tuple([pid, atom('tag')]), new Tuple([atom('is_auth'), me])])

test('pass-through frames (no header features agreed): 112, 131 Control, 131 Payload', () => {
  const w = new DistWriter({ flags: MANDATORY_25 })
  const fs = frames(w.encode(control, payload))
  assert.is(fs.length, 1)
  assert.is(fs[0][0], PASS_THROUGH)
  assert.is(fs[0][1], 131)
  const [m] = readAll(new DistReader(), fs)
  assert.ok(termEquals(m.control, control))
  assert.ok(termEquals(m.payload!, payload))
  const [c] = readAll(new DistReader(), frames(w.encode(new Tuple([1, pid, pid]))))
  assert.is(c.payload, undefined)
})

test('a header without atom cache when only FRAGMENTS is agreed: 131, 68, 0', () => {
  const w = new DistWriter({ flags: MANDATORY_25 | DFLAG_FRAGMENTS })
  const fs = frames(w.encode(control, payload))
  assert.equal([...fs[0].subarray(0, 3)], [131, 68, 0])
  const [m] = readAll(new DistReader(), fs)
  assert.ok(termEquals(m.payload!, payload))
})

test('atom cache: the first message carries new entries, later ones only references', () => {
  const w = new DistWriter({ flags: FLAGS })
  const r = new DistReader()
  const f1 = frames(w.encode(control, payload))
  const f2 = frames(w.encode(control, payload))
  assert.ok(f1[0].includes(Buffer.from('net_kernel')))
  assert.not.ok(f2[0].includes(Buffer.from('net_kernel')), 'second message must not repeat the atom text')
  assert.ok(f2[0].length < f1[0].length)
  for (const f of [f1, f2]) {
    const [m] = readAll(r, f)
    assert.ok(termEquals(m.control, control))
    assert.ok(termEquals(m.payload!, payload))
  }
  // A fresh reader has no entries: the second message alone refers to nothing it knows.
  assert.throws(() => new DistReader().read(f2[0]), (e: unknown) => e instanceof MalformedFrameError)
})

test('a message without large binaries is one Buffer, its frame head written in front of the body', () => {
  const w = new DistWriter({ flags: FLAGS })
  const r = new DistReader()
  const withLong = new Tuple([atom('a_long_atom_name_'.repeat(5)), payload])
  const first = w.encode(control, withLong)
  const second = w.encode(control, withLong)
  // The first message names its atoms in full: a head too long for the room in front goes separately.
  assert.is(first.length, 2)
  assert.is(second.length, 1)
  assert.is(second[0].readUInt32BE(0), second[0].length - 4)
  for (const out of [first, second]) {
    const [m] = readAll(r, frames(out))
    assert.ok(termEquals(m.control, control))
    assert.ok(termEquals(m.payload!, withLong))
  }
  const big = Buffer.alloc(1000, 4)
  const withBig = new Tuple([atom('tag'), big, 7])
  const out = w.encode(control, withBig)
  assert.is(out.length, 3, 'head and the terms before it, the large binary by reference, the terms after it')
  assert.is(out[1], big)
  const [m] = readAll(r, frames(out))
  assert.ok(termEquals(m.payload!, withBig))
  const passThrough = new DistWriter({ flags: FLAGS, atomCache: false }).encode(control, payload)
  assert.is(passThrough.length, 1)
  assert.equal([...passThrough[0].subarray(4, 7)], [131, 68, 0])
})

test('atom cache off by option: header with no references', () => {
  const w = new DistWriter({ flags: FLAGS, atomCache: false })
  const fs = frames(w.encode(control, payload))
  assert.equal([...fs[0].subarray(0, 3)], [131, 68, 0])
})

test('more atoms than references and slot collisions: the rest go inline, round trip stays exact', () => {
  const w = new DistWriter({ flags: FLAGS })
  const r = new DistReader()
  const many = Array.from({ length: 600 }, (_, i) => atom(`atom_${i}`))
  const some = many.filter((_, i) => i % 3 === 0)
  for (const body of [many, some, many.slice().reverse(), many]) {
    const [m] = readAll(r, frames(w.encode(new Tuple([2, atom(''), pid]), body)))
    assert.ok(termEquals(m.payload!, body))
  }
})

test('send-side atom cache: one MessageRefs reused per message; an atom used twice in a message is one reference; a slot collision goes inline', () => {
  const cache = new DistWriter({ flags: FLAGS }).cache
  const r1 = cache.begin()
  const a = atom('reused_a')
  const i = r1.ref(a)
  assert.is(i, 0)
  assert.is(r1.ref(a), 0, 'the same atom again: the same reference')
  // Find an atom that hashes to a's slot: within one message it must be written inline.
  let other = atom('reused_b')
  for (let k = 0; ; k++) {
    const c = cache.begin()
    c.ref(a)
    other = atom(`collide_${k}`)
    if (c.ref(other) === undefined) break
  }
  const r2 = cache.begin()
  assert.is(r2, r1, 'begin() hands out the same object, reset')
  assert.is(r2.atoms.length, 0)
  assert.is(r2.ref(other), 0, 'a slot taken in an earlier message is free in the next one')
  assert.is(r2.ref(a), undefined, 'a different atom in a slot this message already uses goes inline')
  assert.equal(r2.atoms, [other])
  assert.equal(r2.isNew, [true])
})

test('long atoms (over 255 UTF-8 bytes) set LongAtoms and round-trip', () => {
  const w = new DistWriter({ flags: FLAGS })
  const r = new DistReader()
  const long = atom('€'.repeat(200))
  const body = [long, atom('short'), long]
  const [m] = readAll(r, frames(w.encode(new Tuple([2, atom(''), pid]), body)))
  assert.ok(termEquals(m.payload!, body))
  const [m2] = readAll(r, frames(w.encode(new Tuple([2, atom(''), pid]), [long])))
  assert.ok(termEquals(m2.payload!, [long]))
})

test('a message that fails to encode leaves the atom cache in step', () => {
  const w = new DistWriter({ flags: FLAGS })
  const r = new DistReader()
  const bad = [atom('only_in_failed_message'), (() => 1) as unknown as Term]
  assert.throws(() => w.encode(new Tuple([2, atom(''), pid]), bad))
  const good = [atom('only_in_failed_message'), 1]
  const [m] = readAll(r, frames(w.encode(new Tuple([2, atom(''), pid]), good)))
  assert.ok(termEquals(m.payload!, good))
})

test('atoms the encoder refuses are refused with the atom cache too (EncodeError), and nothing is cached', () => {
  const w = new DistWriter({ flags: FLAGS })
  const r = new DistReader()
  for (const name of ['x'.repeat(256), 'é'.repeat(256), 'y\ud800', '\udc00z']) {
    assert.throws(() => w.encode(new Tuple([2, atom(''), pid]), [atom(name)]), (e: unknown) => e instanceof EncodeError, name.slice(0, 8))
  }
  // 255 characters of 2-byte UTF-8 are an atom (LongAtoms in the header), and the writer is still in step.
  const body = [atom('é'.repeat(255)), atom('x'.repeat(255))]
  const [m] = readAll(r, frames(w.encode(new Tuple([2, atom(''), pid]), body)))
  assert.ok(termEquals(m.payload!, body))
})

test('fragments: split at fragmentSize with ids counting down; large binaries are views, never copies', () => {
  const big = Buffer.alloc(300_000)
  for (let i = 0; i < big.length; i++) big[i] = i % 251
  const body = new Tuple([atom('data'), big, [1, 2, 3]])
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 10_000 })
  const out = w.encode(control, body)
  assert.ok(out.some((b) => b.buffer === big.buffer), 'the binary goes out by reference')
  const copied = out.filter((b) => b.buffer !== big.buffer).reduce((n, b) => n + b.length, 0)
  assert.ok(copied < 10_000, `only headers and small terms are copied, not ${copied} bytes`)
  const fs = frames(out)
  assert.is(fs.length, 31)
  assert.is(fs[0][1], 69)
  const seq = fs[0].readBigUInt64BE(2)
  fs.forEach((f, k) => {
    if (k > 0) assert.is(f[1], 70)
    assert.is(f.readBigUInt64BE(2), seq)
    assert.is(f.readBigUInt64BE(10), BigInt(fs.length - k))
    assert.ok(f.length <= 10_000 + 18 + 64)
  })
  const r = new DistReader()
  const got = readAll(r, fs)
  assert.is(got.length, 1)
  assert.ok(termEquals(got[0].payload!, body))
  assert.is(r.pendingSequences, 0)
})

test('fragments: the first fragment holds the whole control message even when it is larger', () => {
  const bigCtl = new Tuple([2, atom(''), pid, Array.from({ length: 500 }, (_, i) => i * 1000)])
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 100 })
  const fs = frames(w.encode(bigCtl, Buffer.alloc(1000, 1)))
  assert.ok(fs[0].length > 2000)
  const [m] = readAll(new DistReader(), fs)
  assert.ok(termEquals(m.control, bigCtl))
})

test('fragments: interleaved sequences (and plain messages between them) are reassembled', () => {
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 64 })
  const a = Array.from({ length: 100 }, (_, i) => i)
  const b = Array.from({ length: 150 }, (_, i) => `s${i}`)
  const fa = frames(w.encode(control, a))
  const fb = frames(w.encode(control, b))
  const fc = frames(w.encode(new Tuple([1, pid, pid])))
  assert.ok(fa.length > 3 && fb.length > 3)
  const mixed: Buffer[] = []
  for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
    if (i < fa.length) mixed.push(fa[i])
    if (i < fb.length) mixed.push(fb[i])
    if (i === 2) mixed.push(...fc)
  }
  const got = readAll(new DistReader(), mixed)
  assert.is(got.length, 3)
  assert.ok(termEquals(got[0].control, new Tuple([1, pid, pid])))
  assert.ok(termEquals(got[1].payload!, a))
  assert.ok(termEquals(got[2].payload!, b))
})

test('the fragment example of the External Term Format document decodes', () => {
  const frag1 = Buffer.from([
    131, 69, 0, 0, 2, 168, 0, 0, 5, 83, 0, 0, 0, 0, 0, 0, 0, 2,
    5, 4, 137, 9, 10, 5, 236, 3, 114, 101, 103, 9, 4, 99, 97, 108, 108,
    238, 13, 115, 101, 116, 95, 103, 101, 116, 95, 115, 116, 97, 116, 101,
    104, 4, 97, 6, 103, 82, 0, 0, 0, 0, 85, 0, 0, 0, 0, 2, 82, 1, 82, 2,
    104, 3, 82, 3, 103, 82, 0, 0, 0, 0, 245, 0, 0, 0, 2, 2,
    104, 2, 82, 4, 109, 0, 0, 0, 128, ...new Array(103).fill(0),
  ])
  const frag2 = Buffer.from([131, 70, 0, 0, 2, 168, 0, 0, 5, 83, 0, 0, 0, 0, 0, 0, 0, 1, ...new Array(25).fill(0)])
  const r = new DistReader()
  // The two references without NewCacheEntryFlag point at entries earlier headers set.
  const node = atom('a@host')
  r.cache.entries[4 * 256 + 10] = node
  r.cache.entries[5] = atom('')
  assert.is(r.read(frag1), undefined)
  const m = r.read(frag2)!
  assert.ok(termEquals(m.control, new Tuple([6, new Pid(node, 85, 0, 2), atom(''), atom('reg')])))
  const expected = new Tuple([
    atom('call'),
    new Pid(node, 245, 2, 2),
    new Tuple([atom('set_get_state'), Buffer.alloc(128)]),
  ])
  assert.ok(termEquals(m.payload!, expected))
  assert.is(r.cache.entries[256 + 236], atom('reg'))
  assert.is(r.cache.entries[9], atom('call'))
})

test('malformed frames are MalformedFrameError', () => {
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 16 })
  const fs = frames(w.encode(control, Array.from({ length: 40 }, (_, i) => i)))
  const seq = (f: Buffer, id: bigint) => {
    const c = Buffer.from(f)
    c.writeBigUInt64BE(id, 10)
    return c
  }
  const cases: Array<[string, () => void]> = [
    ['empty', () => new DistReader().read(Buffer.alloc(0))],
    ['bad magic', () => new DistReader().read(Buffer.from([130, 68, 0]))],
    ['unknown type', () => new DistReader().read(Buffer.from([131, 71, 0]))],
    ['truncated refs', () => new DistReader().read(Buffer.from([131, 68, 3, 0x88]))],
    ['truncated atom text', () => new DistReader().read(Buffer.from([131, 68, 1, 0x08, 0, 5, 97]))],
    ['empty cache entry', () => new DistReader().read(Buffer.from([131, 68, 1, 0x00, 7, 106]))],
    ['continuation without start', () => new DistReader().read(fs[1])],
    ['fragment out of order', () => {
      const r = new DistReader()
      r.read(fs[0])
      r.read(fs[2])
    }],
    ['sequence started twice', () => {
      const r = new DistReader()
      r.read(fs[0])
      r.read(fs[0])
    }],
    ['fragment id 0', () => new DistReader().read(seq(fs[0], 0n))],
    ['garbage after payload', () => new DistReader().read(Buffer.from([131, 68, 0, 104, 1, 97, 1, 106, 106]))],
    ['bad term', () => new DistReader().read(Buffer.from([131, 68, 0, 250]))],
    ['bad pass-through', () => new DistReader().read(Buffer.from([112, 131]))],
    ['reassembly over the limit', () => {
      const r = new DistReader({ maxMessageSize: 100 })
      for (const f of fs) r.read(f)
    }],
  ]
  for (const [what, f] of cases)
    assert.throws(f, (e: unknown) => e instanceof MalformedFrameError, what)
})

test('a frame split off a larger chunk: decoded large binaries are views into the frame', () => {
  const big = Buffer.alloc(5000, 9)
  const w = new DistWriter({ flags: FLAGS })
  const frame = Buffer.concat(w.encode(control, big)).subarray(4)
  const m = new DistReader().read(frame)!
  assert.ok(Buffer.isBuffer(m.payload))
  assert.is((m.payload as Buffer).buffer, frame.buffer)
})

/** Runs `f` counting the bytes Buffer.concat and Buffer#copy copy meanwhile. */
function copiedBytes<T>(f: () => T): { result: T; bytes: number } {
  const concat = Buffer.concat
  const copy = Buffer.prototype.copy
  let bytes = 0
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    const r = concat(list, total)
    bytes += r.length
    return r
  }) as typeof Buffer.concat
  Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) {
    const n = copy.apply(this, args)
    bytes += n
    return n
  }
  try {
    return { result: f(), bytes }
  } finally {
    Buffer.concat = concat
    Buffer.prototype.copy = copy
  }
}

/** The stream of `out` cut into chunks of `size` bytes, each chunk its own allocation (as socket reads are). */
function chunked(out: Buffer[], size: number): Buffer[] {
  const all = Buffer.concat(out)
  const chunks: Buffer[] = []
  for (let i = 0; i < all.length; i += size) chunks.push(Buffer.from(all.subarray(i, i + size)))
  return chunks
}

function readChunks(r: DistReader, chunks: Buffer[]) {
  const f = new Framer({ maxFrameSize: 1 << 30 })
  const views: Buffer[] = []
  const msgs = []
  for (const c of chunks) {
    f.push(c)
    for (let n = f.nextViews(views); n >= 0; n = f.nextViews(views)) {
      const m = r.readViews(views, n)
      if (m) msgs.push(m)
    }
  }
  return msgs
}

test('readViews: a fragmented message whose fragments span chunks is copied once, into the buffer it is decoded from', () => {
  const big = Buffer.alloc(200_000)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251
  const body = new Tuple([atom('data'), big])
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 10_000 })
  // 3,001-byte chunks: every 10 kB fragment spans four of them, and fragment headers fall across chunk edges.
  const chunks = chunked(w.encode(control, body), 3001)
  const r = new DistReader()
  const { result: got, bytes } = copiedBytes(() => readChunks(r, chunks))
  assert.is(got.length, 1)
  assert.ok(termEquals(got[0].payload!, body))
  const payload = (got[0].payload as Tuple).elements[1] as Buffer
  assert.not.ok(chunks.some((c) => c.buffer === payload.buffer), 'the binary is in the reassembled buffer')
  // One copy of the message body, plus at most a small prefix when a header straddles a chunk edge.
  const frameBytes = chunks.reduce((n, c) => n + c.length, 0)
  assert.ok(bytes >= big.length && bytes < frameBytes + 4096 && bytes < 2 * big.length, `copied ${bytes} bytes`)
  assert.is(r.pendingSequences, 0)
})

test('readViews: a whole message spanning three chunks is copied once; one inside a chunk not at all', () => {
  const big = Buffer.alloc(9000, 5)
  const w = new DistWriter({ flags: FLAGS })
  const chunks = chunked(w.encode(control, big), 3500)
  assert.is(chunks.length, 3)
  const { result: got, bytes } = copiedBytes(() => readChunks(new DistReader(), chunks))
  assert.is(got.length, 1)
  assert.ok(termEquals(got[0].payload!, big))
  const frameLength = chunks.reduce((n, c) => n + c.length, 0) - 4
  assert.is(bytes, frameLength)
  const one = Buffer.concat(new DistWriter({ flags: FLAGS }).encode(control, big))
  const { result: got2, bytes: bytes2 } = copiedBytes(() => readChunks(new DistReader(), [one]))
  assert.is(bytes2, 0)
  assert.is((got2[0].payload as Buffer).buffer, one.buffer)
})

test('readViews: fragmented messages cut at every chunk size decode the same as read()', () => {
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 50 })
  const payloadA = [atom('first'), Buffer.alloc(300, 1), 'text', atom('second')]
  const payloadB = new Tuple([atom('other'), Array.from({ length: 40 }, (_, i) => i)])
  const out = [...w.encode(control, payloadA), ...w.encode(new Tuple([1, pid, pid])), ...w.encode(control, payloadB)]
  for (let size = 1; size <= 130; size++) {
    const got = readChunks(new DistReader(), chunked(out, size))
    assert.is(got.length, 3, `chunks of ${size}`)
    assert.ok(termEquals(got[0].payload!, payloadA), `chunks of ${size}`)
    assert.ok(termEquals(got[1].control, new Tuple([1, pid, pid])))
    assert.ok(termEquals(got[2].payload!, payloadB), `chunks of ${size}`)
  }
})

test('random bytes only ever produce MalformedFrameError', () => {
  const prefixes = [[], [112], [131, 68], [131, 69], [131, 70], [131, 68, 0], [131, 68, 2]]
  fc.assert(
    fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 200 }), (prefix, rest) => {
      const r = new DistReader()
      try {
        r.read(Buffer.from([...prefix, ...rest]))
      } catch (e) {
        if (!(e instanceof MalformedFrameError)) throw e
      }
    }),
    { numRuns: 3000 },
  )
})

test('regression: fragmented messages left open are bounded in total by maxMessageSize, not only each', () => {
  // Each sequence stays under maxMessageSize, but a peer that opens many and never finishes them used to
  // make the reader hold maxSequences x maxMessageSize bytes.
  const r = new DistReader({ maxMessageSize: 10_000 })
  const w = new DistWriter({ flags: FLAGS, fragmentSize: 1000 })
  let opened = 0
  assert.throws(
    () => {
      for (;;) {
        const fs = frames(w.encode(control, Buffer.alloc(5000, 1)))
        r.read(fs[0])
        r.read(fs[1])
        opened++
      }
    },
    (e: unknown) => e instanceof MalformedFrameError && /hold more than 10000 bytes/.test((e as Error).message),
  )
  assert.ok(opened >= 4 && opened <= 5, `opened ${opened}`)
  assert.ok(r.pendingBytes <= 10_000 + 1000)
  // Finished sequences give their bytes back.
  const r2 = new DistReader({ maxMessageSize: 10_000 })
  const w2 = new DistWriter({ flags: FLAGS, fragmentSize: 1000 })
  for (let i = 0; i < 20; i++) assert.is(readAll(r2, frames(w2.encode(control, Buffer.alloc(5000, 2)))).length, 1)
  assert.is(r2.pendingBytes, 0)
})

test.run()
