// A fuzzer for a running node's network surface: raw TCP clients throw random and mutated bytes at its
// embedded EPMD and at its distribution port before the handshake, in the middle of it (after a valid
// send_name), and after a completed handshake (a real one, with the cookie), where frames carry corrupt ETF,
// bad control tuples, bad atom cache references, bad fragments and ETF bombs. After each post-handshake case
// a probe (net_kernel is_auth, as net_adm:ping sends it) tells whether the node kept the connection
// ("answered"), closed it ("closed"), or is still waiting for bytes that will never come ("stalled").
// Used by integration/hostile.test.ts (a CI-sized run) and scripts/fuzz-dist.ts (100,000+ cases).
import * as net from 'node:net'
import { deflateSync } from 'node:zlib'
import { Connection } from '../../src/dist/connection.js'
import { encodeControl, type ControlMessage } from '../../src/dist/control.js'
import { DEFAULT_FLAGS, DFLAG_FRAGMENTS, DFLAG_HANDSHAKE_23 } from '../../src/dist/flags.js'
import { Framer } from '../../src/dist/framer.js'
import {
  encodeChallengeReply,
  encodeComplement,
  encodeSendName,
  genChallenge,
  genDigest,
  initiateHandshake,
} from '../../src/dist/handshake.js'
import { AtomCacheIn, DistWriter, readAtomCacheRefs } from '../../src/dist/header.js'
import { isAuthCall, NET_KERNEL } from '../../src/dist/net_kernel.js'
import { encodeRequest, NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL } from '../../src/epmd/messages.js'
import { termToBinary } from '../../src/etf/index.js'
import {
  atom,
  Atom,
  BitBinary,
  Float,
  ImproperList,
  Pid,
  Ref,
  Tuple,
  tuple,
  type Term,
} from '../../src/etf/terms.js'
import { silentLogger } from '../../src/logger.js'

// --- randomness ------------------------------------------------------------------------------------

/** mulberry32: small, fast, and reproducible from a seed. */
export class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9
  }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  int(n: number): number {
    return n <= 1 ? 0 : this.u32() % n
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff
    return b
  }
  /** A child generator, so one case's draws do not shift another's. */
  fork(): Rng {
    return new Rng(this.u32())
  }
}

const INTERESTING_U8 = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 68, 69, 70, 80, 82, 88, 90, 97, 98, 104, 105, 106, 107, 108, 109, 110, 111, 112, 116, 118, 119, 131]
const INTERESTING_U16 = [0, 1, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff]
const INTERESTING_U32 = [0, 1, 0xff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 1 << 24, 64 * 1024 * 1024]

/** Byte-level mutations, a few at a time: flips, interesting values, inserts, deletes, duplications, cuts. */
export function mutate(rng: Rng, input: Buffer, rounds = 1 + rng.int(4)): Buffer {
  let b: Buffer = Buffer.from(input)
  for (let r = 0; r < rounds; r++) {
    if (b.length === 0) {
      b = rng.bytes(1 + rng.int(8))
      continue
    }
    const at = rng.int(b.length)
    switch (rng.int(10)) {
      case 0:
      case 1:
        b[at] ^= 1 << rng.int(8)
        break
      case 2:
        b[at] = rng.u32() & 0xff
        break
      case 3:
        b[at] = rng.pick(INTERESTING_U8)
        break
      case 4:
        if (b.length >= 2) b.writeUInt16BE(rng.pick(INTERESTING_U16), rng.int(b.length - 1))
        break
      case 5:
        if (b.length >= 4) b.writeUInt32BE(rng.pick(INTERESTING_U32) >>> 0, rng.int(b.length - 3))
        break
      case 6:
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)])
        break
      case 7:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(16)))])
        break
      case 8: {
        const len = 1 + rng.int(Math.min(64, b.length - at))
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)])
        break
      }
      case 9:
        b = b.subarray(0, at)
        break
    }
  }
  return b
}

/** A random term of bounded size: what a peer could legitimately send, as material for mutations. */
export function randomTerm(rng: Rng, node: Atom, depth = 0): Term {
  const leaf = depth > 3 || rng.chance(0.4)
  const k = leaf ? rng.int(12) : 12 + rng.int(5)
  switch (k) {
    case 0:
      return rng.int(256)
    case 1:
      return (rng.u32() | 0) * (rng.chance(0.5) ? 1 : 1000)
    case 2:
      return BigInt(rng.u32()) * BigInt(rng.u32()) * 1_000_003n * (rng.chance(0.5) ? -1n : 1n)
    case 3:
      return rng.chance(0.5) ? rng.u32() / 7 : new Float(rng.int(1000))
    case 4:
      return atom(rng.pick(['ok', 'error', 'undefined', '', 'fuzz', 'ts_sink', 'kill', 'normal', 'äöü', 'x'.repeat(255)]))
    case 5:
      return rng.bytes(rng.chance(0.8) ? rng.int(64) : 65 + rng.int(2000))
    case 6:
      return 'charlist'.slice(0, rng.int(9))
    case 7:
      return new Pid(node, rng.int(0x8000), rng.int(0x2000), rng.u32())
    case 8:
      return new Ref(node, rng.u32(), [rng.int(0x40000), rng.u32(), rng.u32()])
    case 9:
      return new BitBinary(rng.bytes(1 + rng.int(8)), 1 + rng.int(7))
    case 10:
      return rng.chance(0.5)
    case 11:
      return []
    case 12:
      return Array.from({ length: rng.int(8) }, () => randomTerm(rng, node, depth + 1))
    case 13:
      return new Tuple(Array.from({ length: rng.int(6) }, () => randomTerm(rng, node, depth + 1)))
    case 14: {
      const m = new Map<Term, Term>()
      // Keys made distinct as Erlang terms ({I, _}): two JS keys equal in Erlang would make invalid ETF.
      for (let i = rng.int(5); i > 0; i--) m.set(tuple(i, randomTerm(rng, node, depth + 1)), randomTerm(rng, node, depth + 1))
      return m
    }
    case 15:
      return new ImproperList([randomTerm(rng, node, depth + 1)], randomTerm(rng, node, 9))
    default:
      return tuple(atom('nested'), randomTerm(rng, node, depth + 1))
  }
}

// --- the target ----------------------------------------------------------------------------------

export interface FuzzTarget {
  host: string
  /** Distribution port. */
  port: number
  epmdPort: number
  /** Full node name, e.g. tsnode@host. */
  name: string
  cookie: string
  creation: number
  /** Pid id of a process that swallows messages (ts_sink), for messages addressed by pid. */
  sinkId: number
}

export type Outcome = 'answered' | 'closed' | 'stalled' | 'refused'

const prefix2 = (body: Buffer) => {
  const b = Buffer.allocUnsafe(2 + body.length)
  b.writeUInt16BE(body.length & 0xffff, 0)
  body.copy(b, 2)
  return b
}
const prefix4 = (body: Buffer) => {
  const b = Buffer.allocUnsafe(4 + body.length)
  b.writeUInt32BE(body.length, 0)
  body.copy(b, 4)
  return b
}

function connect(host: string, port: number, timeoutMs = 5000): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    const t = setTimeout(() => (s.destroy(), resolve(undefined)), timeoutMs)
    s.once('connect', () => {
      clearTimeout(t)
      s.removeAllListeners('error')
      s.on('error', () => {})
      resolve(s)
    })
    s.once('error', () => (clearTimeout(t), resolve(undefined)))
  })
}

/**
 * Writes the chunks (each one a separate write, so the peer may see them split) and waits up to graceMs for
 * the peer to close. A peer that stays open is reset (no TIME_WAIT left behind): 'stalled'. Data from the
 * peer makes it 'answered' when the peer then closed.
 */
async function oneShot(host: string, port: number, chunks: Buffer[], graceMs: number): Promise<Outcome> {
  const s = await connect(host, port)
  if (!s) return 'refused'
  let got = 0
  s.on('data', (d: Buffer) => (got += d.length))
  const closed = new Promise<void>((r) => s.once('close', () => r()))
  for (const c of chunks) if (c.length > 0) s.write(c)
  const t = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs))
  const r = await Promise.race([closed.then(() => 'closed' as const), t])
  if (r === 'timeout') {
    s.resetAndDestroy()
    await closed
    return 'stalled'
  }
  return got > 0 ? 'answered' : 'closed'
}

/** Splits a buffer at random points (the peer must reassemble across reads). */
function split(rng: Rng, b: Buffer): Buffer[] {
  if (b.length < 2 || rng.chance(0.7)) return [b]
  const out: Buffer[] = []
  let at = 0
  while (at < b.length) {
    const n = 1 + rng.int(b.length - at)
    out.push(b.subarray(at, at + n))
    at += n
  }
  return out
}

// --- EPMD ----------------------------------------------------------------------------------------

function epmdSeeds(t: FuzzTarget, rng: Rng, id: number): Buffer[] {
  const alive = t.name.split('@')[0]
  return [
    encodeRequest({
      kind: 'ALIVE2_REQ',
      name: `fz_epmd_${id}`,
      port: 1 + rng.int(65535),
      nodeType: rng.pick([NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL]),
      protocol: 0,
      highestVersion: 6,
      lowestVersion: 5,
      extra: rng.bytes(rng.int(8)),
    }),
    encodeRequest({ kind: 'PORT_PLEASE2_REQ', name: alive }),
    encodeRequest({ kind: 'PORT_PLEASE2_REQ', name: `nobody_${id}` }),
    encodeRequest({ kind: 'NAMES_REQ' }),
    encodeRequest({ kind: 'DUMP_REQ' }),
    encodeRequest({ kind: 'KILL_REQ' }),
    encodeRequest({ kind: 'STOP_REQ', name: alive }),
  ]
}

async function epmdCase(rng: Rng, t: FuzzTarget, id: number): Promise<Outcome> {
  const seeds = epmdSeeds(t, rng, id)
  let bytes: Buffer
  switch (rng.int(4)) {
    case 0:
      bytes = rng.bytes(1 + rng.int(64))
      break
    case 1:
      bytes = rng.pick(seeds)
      break
    default:
      bytes = mutate(rng, rng.pick(seeds))
  }
  // Two requests back to back, or a request and trailing garbage, now and then.
  if (rng.chance(0.1)) bytes = Buffer.concat([bytes, rng.chance(0.5) ? rng.pick(seeds) : rng.bytes(1 + rng.int(8))])
  return oneShot(t.host, t.epmdPort, split(rng, bytes), 60)
}

// --- before and during the handshake --------------------------------------------------------------

function sendNameSeed(rng: Rng, name: string): Buffer {
  const flags = rng.chance(0.8) ? DEFAULT_FLAGS | DFLAG_HANDSHAKE_23 : BigInt(rng.u32()) << 32n | BigInt(rng.u32())
  return encodeSendName(flags, rng.u32() || 1, name)
}

async function preCase(rng: Rng, t: FuzzTarget, id: number): Promise<Outcome> {
  const host = t.name.split('@')[1]
  let bytes: Buffer
  switch (rng.int(5)) {
    case 0:
      bytes = rng.bytes(1 + rng.int(128))
      break
    case 1:
      // A random body behind a correct length.
      bytes = prefix2(rng.bytes(rng.int(64)))
      break
    case 2:
      // A length beyond any handshake message.
      bytes = Buffer.concat([Buffer.from([0xff, 0xff]), rng.bytes(rng.int(32))])
      break
    default:
      bytes = rng.chance(0.5)
        ? prefix2(mutate(rng, sendNameSeed(rng, `fzp${id}@${host}`)))
        : mutate(rng, prefix2(sendNameSeed(rng, `fzp${id}@${host}`)))
  }
  return oneShot(t.host, t.port, split(rng, bytes), 60)
}

/** A raw client for the handshake: 2-byte framed messages, read with a deadline. */
class RawHandshake {
  private readonly framer = new Framer({ lengthBytes: 2, maxFrameSize: 65535 })
  private readonly msgs: Buffer[] = []
  private wake: (() => void) | undefined
  closed = false
  readonly closedP: Promise<void>

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.framer.push(d)
      for (let m = this.framer.next(); m !== undefined; m = this.framer.next()) this.msgs.push(m)
      this.wake?.()
    })
    this.closedP = new Promise((r) =>
      socket.once('close', () => {
        this.closed = true
        this.wake?.()
        r()
      }),
    )
  }

  static async open(host: string, port: number): Promise<RawHandshake | undefined> {
    const s = await connect(host, port)
    return s && new RawHandshake(s)
  }

  send(body: Buffer): void {
    if (!this.closed) this.socket.write(prefix2(body))
  }

  async recv(timeoutMs = 3000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs
    while (this.msgs.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.wake = r
        setTimeout(r, Math.max(1, deadline - Date.now()))
      })
      this.wake = undefined
    }
    return this.msgs.shift()
  }

  /** Waits up to graceMs for the peer to close; resets the connection otherwise. True if the peer closed. */
  async waitClose(graceMs: number): Promise<boolean> {
    const r = await Promise.race([this.closedP.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), graceMs))])
    if (!r) {
      this.socket.resetAndDestroy()
      await this.closedP
    }
    return r
  }
}

/** send_name, status, challenge: the state in which the node waits for our challenge reply. */
export async function openToChallenge(
  t: FuzzTarget,
  name: string,
): Promise<{ hs: RawHandshake; challenge: number; status: string } | undefined> {
  const hs = await RawHandshake.open(t.host, t.port)
  if (!hs) return undefined
  hs.send(encodeSendName(DEFAULT_FLAGS | DFLAG_HANDSHAKE_23, 1 + (name.length % 1000), name))
  const st = await hs.recv()
  const ch = await hs.recv()
  if (!st || !ch || ch[0] !== 0x4e || ch.length < 19) {
    hs.socket.resetAndDestroy()
    return undefined
  }
  return { hs, challenge: ch.readUInt32BE(9), status: st.toString('latin1', 1) }
}

/** A challenge reply (and its challenge) from an earlier mid-handshake case, for replays. */
let lastReply: Buffer | undefined

async function midCase(rng: Rng, t: FuzzTarget, id: number): Promise<Outcome> {
  const host = t.name.split('@')[1]
  const o = await openToChallenge(t, `fzm${id}@${host}`)
  if (!o) return 'refused'
  const { hs, challenge } = o
  const good = encodeChallengeReply(genChallenge(), genDigest(challenge, t.cookie))
  let bytes: Buffer
  switch (rng.int(8)) {
    case 0:
      bytes = rng.bytes(1 + rng.int(64))
      break
    case 1:
      bytes = prefix2(mutate(rng, good))
      break
    case 2:
      bytes = mutate(rng, prefix2(good))
      break
    case 3:
      // Wrong digest: computed with another cookie.
      bytes = prefix2(encodeChallengeReply(genChallenge(), genDigest(challenge, `${t.cookie}x`)))
      break
    case 4:
      // Replayed: a reply that was right for an earlier challenge.
      bytes = prefix2(lastReply ?? good.fill(0, 5))
      break
    case 5:
      bytes = prefix2(encodeComplement(DEFAULT_FLAGS, 1))
      break
    case 6:
      bytes = prefix2(sendNameSeed(rng, `fzm${id}b@${host}`))
      break
    default:
      bytes = prefix2(rng.bytes(rng.int(40)))
  }
  lastReply = good
  for (const c of split(rng, bytes)) hs.socket.write(c)
  // A reply that mutated into the right one gets the ack: the connection is up; we then drop it.
  const ack = await hs.recv(80)
  if (ack && ack[0] === 0x61) {
    hs.socket.resetAndDestroy()
    return 'answered'
  }
  return (await hs.waitClose(60)) ? 'closed' : 'stalled'
}

// --- after the handshake --------------------------------------------------------------------------

/** A connected fuzz peer: a real Connection for what the node sends, raw writes for what we throw at it. */
export class FuzzSession {
  readonly me: Pid
  readonly node: Atom
  /** Frames through the atom cache (mutations can corrupt the node's cache: only for fuzz frames). */
  readonly cacheWriter: DistWriter
  /** Small fragments, so ordinary messages arrive fragmented. */
  readonly fragWriter: DistWriter
  /** Self-contained frames (no cache references): a valid one must always be accepted. */
  readonly plainWriter: DistWriter
  closedReason: string | undefined
  private readonly waiting = new Map<string, () => void>()
  private probeN = 0

  private constructor(
    readonly t: FuzzTarget,
    readonly socket: net.Socket,
    readonly conn: Connection,
    ourName: string,
    readonly creation: number,
  ) {
    this.node = atom(t.name)
    this.me = new Pid(atom(ourName), 1, 0, creation)
    this.cacheWriter = new DistWriter({ flags: conn.flags })
    this.fragWriter = new DistWriter({ flags: conn.flags, fragmentSize: 512, atomCache: false })
    this.plainWriter = new DistWriter({ flags: conn.flags, atomCache: false })
    conn.on('control', (m: ControlMessage) => {
      if (m.kind !== 'SEND' && m.kind !== 'SEND_SENDER') return
      const msg = m.message
      if (msg instanceof Tuple && msg.length === 2 && msg.get(0) instanceof Ref) {
        const key = (msg.get(0) as Ref).ids.join('.')
        const w = this.waiting.get(key)
        if (w) {
          this.waiting.delete(key)
          w()
        }
      }
    })
    conn.once('close', (reason) => {
      this.closedReason = reason
      for (const w of this.waiting.values()) w()
      this.waiting.clear()
    })
  }

  static async open(t: FuzzTarget, ourName: string): Promise<FuzzSession | undefined> {
    const s = await connect(t.host, t.port)
    if (!s) return undefined
    const creation = 1 + (ourName.length * 7919) % 0xfffff
    try {
      // Fragments offered: when the target offers them too, the fuzz sends fragmented messages.
      const r = await initiateHandshake(s, {
        name: ourName,
        peer: t.name,
        cookie: t.cookie,
        creation,
        timeout: 5000,
        flags: DEFAULT_FLAGS | DFLAG_FRAGMENTS,
      })
      const conn = new Connection({
        socket: s,
        peer: r.peer,
        flags: r.flags,
        peerFlags: r.peerFlags,
        peerCreation: r.creation,
        tail: r.tail,
        atomCache: false,
        logger: silentLogger,
        maxFrameSize: 256 * 1024 * 1024,
        // The session also writes raw bytes to `s`: the connection must keep that socket, not adopt its handle.
        directRead: false,
      })
      return new FuzzSession(t, s, conn, ourName, creation)
    } catch {
      s.destroy()
      return undefined
    }
  }

  get closed(): boolean {
    return this.closedReason !== undefined
  }

  write(chunks: Buffer[]): void {
    if (this.closed) return
    this.socket.cork()
    for (const c of chunks) if (c.length > 0) this.socket.write(c)
    this.socket.uncork()
  }

  /** net_adm:ping's is_auth call; 'answered' once the node replies. */
  async probe(timeoutMs: number): Promise<Outcome> {
    if (this.closed) return 'closed'
    const ref = new Ref(this.me.node, this.creation, [++this.probeN & 0x3ffff, 7, 7])
    const key = ref.ids.join('.')
    const replied = new Promise<void>((r) => this.waiting.set(key, r))
    try {
      this.conn.send({ kind: 'REG_SEND', from: this.me, toName: NET_KERNEL, message: isAuthCall(this.me, ref, this.me.node) })
    } catch {
      return 'closed'
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      replied.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ])
    clearTimeout(timer)
    if (!timedOut && !this.closed) return 'answered'
    if (this.closed) return 'closed'
    this.waiting.delete(key)
    return 'stalled'
  }

  close(): void {
    this.conn.close('fuzz case done')
    this.socket.resetAndDestroy()
  }
}

/** The control messages a peer sends in normal life, addressed to things on the target. */
function seedMessages(s: FuzzSession, rng: Rng): ControlMessage[] {
  const t = s.t
  const me = s.me
  const node = s.node
  const sink = new Pid(node, t.sinkId, 0, t.creation)
  const ghost = new Pid(node, 0x7000 + rng.int(0x800), 0, t.creation)
  const ref = new Ref(me.node, s.creation, [rng.int(0x40000), rng.u32(), 1])
  const theirRef = new Ref(node, t.creation, [rng.int(0x40000), rng.u32(), 2])
  const payload = randomTerm(rng, me.node)
  return [
    { kind: 'REG_SEND', from: me, toName: atom('ts_sink'), message: payload },
    { kind: 'REG_SEND', from: me, toName: atom('fuzz_nobody'), message: payload },
    { kind: 'SEND_SENDER', from: me, to: sink, message: payload },
    { kind: 'SEND', to: ghost, message: payload },
    { kind: 'LINK', from: me, to: sink },
    { kind: 'LINK', from: me, to: ghost },
    { kind: 'UNLINK_ID', id: 1 + rng.int(1000), from: me, to: sink },
    { kind: 'UNLINK_ID_ACK', id: 1 + rng.int(1000), from: me, to: ghost },
    { kind: 'MONITOR_P', from: me, to: atom('ts_sink'), ref },
    { kind: 'MONITOR_P', from: me, to: ghost, ref },
    { kind: 'DEMONITOR_P', from: me, to: sink, ref },
    { kind: 'EXIT2', from: me, to: sink, reason: atom('fuzz') },
    { kind: 'EXIT', from: me, to: ghost, reason: payload },
    { kind: 'ALIAS_SEND', from: me, alias: theirRef, message: payload },
    { kind: 'MONITOR_P_EXIT', from: me, to: ghost, ref: theirRef, reason: atom('gone') },
    { kind: 'SPAWN_REPLY', reqId: theirRef, to: ghost, flags: 0, result: atom('badarg') },
    { kind: 'GROUP_LEADER', from: me, to: ghost },
    {
      kind: 'SPAWN_REQUEST',
      reqId: ref,
      from: me,
      groupLeader: me,
      module: atom('fuzz'),
      function: atom('nofun'),
      arity: 1,
      options: [],
      args: [payload],
    },
    {
      kind: 'REG_SEND',
      from: me,
      toName: atom('rex'),
      message: tuple(atom('$gen_call'), tuple(me, ref), tuple(atom('call'), atom('fuzz'), atom('nofun'), [payload], me)),
    },
    { kind: 'REG_SEND', from: me, toName: NET_KERNEL, message: isAuthCall(me, ref, me.node) },
  ]
}

/** Frames of a control message through `w` (the message's own shape is not checked: anything goes). */
function framesOf(w: DistWriter, control: Term, payload?: Term): Buffer {
  return Buffer.concat(w.encode(control, payload))
}

export type PostKind = 'valid' | 'mutated' | 'badControl' | 'badCache' | 'badFragments' | 'bomb' | 'raw'

/** A precomputed zlib stream of 256 MiB of zeros (about 256 KB): a decompression bomb. */
let zeroBomb: Buffer | undefined
const bomb = () => (zeroBomb ??= deflateSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 }))

export interface Bomb {
  name: string
  /** What the node must do: close the connection (with a logged reason), or take the message. */
  expect: 'closed' | 'answered'
  frames(s: FuzzSession): Buffer[]
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

/** A frame: 131,68,0, a REG_SEND to ts_sink, then a hand-made payload (terms carry no version byte here). */
function toSink(s: FuzzSession, payloadBytes: Buffer): Buffer {
  const ctl = termToBinary(tuple(6, s.me, atom(''), atom('ts_sink'))).subarray(1)
  return prefix4(Buffer.concat([Buffer.from([131, 68, 0]), ctl, payloadBytes]))
}

/** A pass-through frame: 112, 131 Control, then 131 and a hand-made payload (COMPRESSED lives here). */
function passThroughToSink(s: FuzzSession, payloadBytes: Buffer): Buffer {
  return prefix4(Buffer.concat([Buffer.of(112), termToBinary(tuple(6, s.me, atom(''), atom('ts_sink'))), Buffer.of(131), payloadBytes]))
}

function nestedLists(depth: number): Buffer {
  const body = Buffer.alloc(depth * 6 + 1)
  for (let i = 0; i < depth; i++) body.set([108, 0, 0, 0, 1], i * 5)
  body.fill(106, depth * 5)
  return body
}

/** ETF bombs: huge declared lengths, deep nesting, COMPRESSED with huge or lying sizes, oversized frames. */
export const BOMBS: Bomb[] = [
  { name: 'BINARY_EXT declaring 4 GiB', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(109), u32(0xfffffff0), Buffer.alloc(16)]))] },
  { name: 'LIST_EXT declaring 2^32-1 elements', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(108), u32(0xffffffff), Buffer.of(97, 1, 97, 2)]))] },
  { name: 'MAP_EXT declaring 2^31-1 pairs', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(116), u32(0x7fffffff), Buffer.of(97, 1)]))] },
  { name: 'LARGE_TUPLE_EXT declaring 2^31-1 elements', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(105), u32(0x7fffffff), Buffer.of(97, 1)]))] },
  { name: 'LARGE_BIG_EXT of 4 GiB', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(111), u32(0xffffffff), Buffer.of(0, 1)]))] },
  { name: 'STRING_EXT declaring 65535 bytes, holding 3', expect: 'closed', frames: (s) => [toSink(s, Buffer.of(107, 0xff, 0xff, 1, 2, 3))] },
  { name: 'ATOM_UTF8_EXT of 65535 bytes', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(118, 0xff, 0xff), Buffer.alloc(65535, 97)]))] },
  { name: 'lists nested 200,000 deep', expect: 'closed', frames: (s) => [toSink(s, nestedLists(200_000))] },
  { name: 'lists nested 90,000 deep (under maxDepth: delivered)', expect: 'answered', frames: (s) => [toSink(s, nestedLists(90_000))] },
  {
    name: '1-tuples nested 1,000,000 deep',
    expect: 'closed',
    frames: (s) => {
      const depth = 1_000_000
      const body = Buffer.alloc(depth * 2 + 2)
      for (let i = 0; i < depth; i++) body.set([104, 1], i * 2)
      body.set([97, 0], depth * 2)
      return [toSink(s, body)]
    },
  },
  { name: 'COMPRESSED declaring 4 GiB', expect: 'closed', frames: (s) => [passThroughToSink(s, Buffer.concat([Buffer.of(80), u32(0xffffffff), deflateSync(Buffer.of(97, 1))]))] },
  { name: 'COMPRESSED declaring 32 MiB whose stream inflates to 256 MiB', expect: 'closed', frames: (s) => [passThroughToSink(s, Buffer.concat([Buffer.of(80), u32(32 * 1024 * 1024), bomb()]))] },
  { name: 'COMPRESSED declaring 60 MiB whose stream holds 2 bytes', expect: 'closed', frames: (s) => [passThroughToSink(s, Buffer.concat([Buffer.of(80), u32(60 * 1024 * 1024), deflateSync(Buffer.of(97, 1))]))] },
  { name: 'COMPRESSED inside a distribution header', expect: 'closed', frames: (s) => [toSink(s, Buffer.concat([Buffer.of(80), u32(2), deflateSync(Buffer.of(97, 1))]))] },
  { name: 'a frame announcing 4 GiB', expect: 'closed', frames: () => [u32(0xfffffff0), Buffer.alloc(64)] },
  {
    name: 'a fragmented message announcing 2^63 fragments, never finished (held within the limits)',
    expect: 'answered',
    frames: () => {
      const body = Buffer.concat([Buffer.of(131, 69), Buffer.alloc(16), Buffer.of(0, 104, 1, 97, 2)])
      // A sequence id far from the ones a DistWriter counts from 1 (a valid message must not collide).
      body.writeBigUInt64BE((1n << 62n) + BigInt(Math.floor(Math.random() * 2 ** 32)), 2)
      body.writeBigUInt64BE(1n << 63n, 10)
      return [prefix4(body)]
    },
  },
]

function badControlFrames(rng: Rng, s: FuzzSession): Buffer[] {
  const pool = (): Term =>
    rng.pick<() => Term>([
      () => s.me,
      () => new Pid(atom(rng.pick(['other@host', s.t.name, 'x@y'])), rng.int(100), 0, rng.u32()),
      () => atom(rng.pick(['', 'ts_sink', 'rex', 'net_kernel', 'kill', 'fuzz'])),
      () => new Ref(s.me.node, s.creation, [1, 2, 3]),
      () => rng.int(300) - 20,
      () => BigInt(rng.u32()) << 40n,
      () => randomTerm(rng, s.me.node),
    ])()
  const opcode = rng.chance(0.8) ? rng.int(40) : rng.pick([-1, 255, 1 << 20, 2 ** 40])
  const elems: Term[] = [rng.chance(0.9) ? opcode : pool()]
  for (let i = rng.int(7); i > 0; i--) elems.push(pool())
  const control: Term = rng.chance(0.95) ? new Tuple(elems) : pool()
  const payload = rng.chance(0.5) ? randomTerm(rng, s.me.node) : undefined
  return [framesOf(s.plainWriter, control, payload)]
}

function badCacheFrames(rng: Rng, s: FuzzSession): Buffer[] {
  const m = rng.pick(seedMessages(s, rng))
  const { control, payload } = encodeControl(m, s.conn.flags)
  // A fresh cache writer: its first message carries new entries with their texts.
  const w = new DistWriter({ flags: s.conn.flags })
  const frame = framesOf(w, control, payload)
  const body = Buffer.from(frame.subarray(4))
  if (body[1] !== 68) return [frame]
  const { end } = readAtomCacheRefs(body, 2, new AtomCacheIn())
  switch (rng.int(4)) {
    case 0: {
      // Mutations inside the header only.
      const head = mutate(rng, body.subarray(0, end))
      return [prefix4(Buffer.concat([head, body.subarray(end)]))]
    }
    case 1: {
      // Every ATOM_CACHE_REF in the terms points at a random index.
      for (let i = end; i < body.length - 1; i++) if (body[i] === 82) body[i + 1] = rng.int(256)
      return [prefix4(body)]
    }
    case 2: {
      // NewCacheEntryFlag cleared: references to entries never set (or set by someone else).
      const n = body[2]
      for (let i = 0; i < (n >> 1) + 1; i++) body[3 + i] &= 0x77
      return [prefix4(body)]
    }
    default: {
      // A random header: random count, flags and refs.
      const n = rng.int(255)
      const rnd = rng.bytes((n >> 1) + 1 + rng.int(n * 4 + 1))
      return [prefix4(Buffer.concat([Buffer.of(131, 68, n), rnd, body.subarray(end)]))]
    }
  }
}

function badFragmentFrames(rng: Rng, s: FuzzSession): Buffer[] {
  const m = rng.pick(seedMessages(s, rng))
  const { control } = encodeControl(m, s.conn.flags)
  const big = Buffer.alloc(2000 + rng.int(4000), rng.int(256))
  const fs: Buffer[] = []
  const framer = new Framer({ maxFrameSize: 1 << 30 })
  framer.push(Buffer.concat(s.fragWriter.encode(control, tuple(atom('big'), big))))
  for (let f = framer.next(); f !== undefined; f = framer.next()) fs.push(Buffer.from(f))
  if (fs.length < 2) return fs.map(prefix4)
  switch (rng.int(7)) {
    case 0: // a middle fragment lost
      fs.splice(1 + rng.int(fs.length - 1), 1)
      break
    case 1: // two swapped
      if (fs.length > 2) [fs[1], fs[2]] = [fs[2], fs[1]]
      break
    case 2: // the first twice
      fs.splice(1, 0, fs[0])
      break
    case 3: // a continuation for another sequence
      fs[1 + rng.int(fs.length - 1)].writeBigUInt64BE(BigInt(rng.u32()) + 1_000_000n, 2)
      break
    case 4: // fragment id 0
      fs[rng.int(fs.length)].writeBigUInt64BE(0n, 10)
      break
    case 5: // left open: the last fragment never comes (the node holds the rest, within its limits)
      fs.pop()
      break
    default: // a mutated fragment
      fs[rng.int(fs.length)] = mutate(rng, fs[rng.int(fs.length)])
  }
  return fs.map(prefix4)
}

function rawFrames(rng: Rng, s: FuzzSession): Buffer[] {
  switch (rng.int(5)) {
    case 0:
      return [rng.bytes(1 + rng.int(256))]
    case 1: {
      // A valid message whose 4-byte length was mutated: the framing goes out of step.
      const m = rng.pick(seedMessages(s, rng))
      const { control, payload } = encodeControl(m, s.conn.flags)
      return [mutate(rng, framesOf(s.plainWriter, control, payload))]
    }
    case 2:
      // Ticks (valid) and then garbage.
      return [Buffer.alloc(4 * (1 + rng.int(8))), prefix4(rng.bytes(1 + rng.int(64)))]
    case 3:
      // A frame cut short and followed by the next (the node reads the next one's bytes into it).
      return [prefix4(rng.bytes(64)).subarray(0, 10 + rng.int(50))]
    default:
      return [prefix4(Buffer.concat([Buffer.of(rng.pick([131, 112, 0, 255])), rng.bytes(rng.int(128))]))]
  }
}

function postFrames(rng: Rng, s: FuzzSession, kind: PostKind): Buffer[] {
  switch (kind) {
    case 'valid': {
      const m = rng.pick(seedMessages(s, rng))
      const { control, payload } = encodeControl(m, s.conn.flags)
      return [framesOf(rng.chance(0.3) ? s.fragWriter : s.plainWriter, control, payload)]
    }
    case 'mutated': {
      const m = rng.pick(seedMessages(s, rng))
      const { control, payload } = encodeControl(m, s.conn.flags)
      const frame = framesOf(rng.chance(0.5) ? s.cacheWriter : s.plainWriter, control, payload)
      return [prefix4(mutate(rng, frame.subarray(4)))]
    }
    case 'badControl':
      return badControlFrames(rng, s)
    case 'badCache':
      return badCacheFrames(rng, s)
    case 'badFragments':
      return badFragmentFrames(rng, s)
    case 'bomb':
      return rng.pick(BOMBS).frames(s)
    case 'raw':
      return rawFrames(rng, s)
  }
}

// --- the run -------------------------------------------------------------------------------------

export type CaseKind = 'epmd' | 'pre' | 'mid' | `post:${PostKind}`

export const DEFAULT_MIX: Record<CaseKind, number> = {
  epmd: 15,
  pre: 20,
  mid: 12,
  'post:valid': 6,
  'post:mutated': 17,
  'post:badControl': 8,
  'post:badCache': 6,
  'post:badFragments': 6,
  'post:bomb': 2,
  'post:raw': 8,
}

export interface FuzzOptions {
  cases: number
  seed?: number
  /** Cases in flight at once. Default 16. */
  concurrency?: number
  /** Called now and then with the report so far. */
  onProgress?: (r: FuzzReport) => void
}

export interface FuzzReport {
  seed: number
  cases: number
  ms: number
  casesPerSecond: number
  handshakes: number
  bytesSent: number
  byKind: Record<string, Record<Outcome, number>>
  /** Valid messages the node refused (must stay empty), and how. */
  validRefusedDetail: string[]
  /** Names of fuzz peers whose connection the node closed (after the handshake). */
  closedByNode: string[]
  /** Connections we closed because what the node sent did not decode (must stay 0), with the reasons. */
  undecodable: string[]
}

/** Runs `cases` cases against the target; never throws for what the target does. */
export async function runFuzz(t: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const seed = opts.seed ?? (Date.now() ^ (process.pid << 16)) >>> 0
  const master = new Rng(seed)
  const mix = Object.entries(DEFAULT_MIX).filter(([, w]) => w > 0) as Array<[CaseKind, number]>
  const total = mix.reduce((a, [, w]) => a + w, 0)
  const pickKind = (rng: Rng): CaseKind => {
    let x = rng.u32() % total
    for (const [k, w] of mix) {
      if (x < w) return k
      x -= w
    }
    return mix[0][0]
  }
  const host = t.name.split('@')[1]
  const prefix = `fz${process.pid % 10000}`
  const report: FuzzReport = {
    seed,
    cases: 0,
    ms: 0,
    casesPerSecond: 0,
    handshakes: 0,
    bytesSent: 0,
    byKind: {},
    validRefusedDetail: [],
    closedByNode: [],
    undecodable: [],
  }
  const count = (k: string, o: Outcome) => {
    const b = (report.byKind[k] ??= { answered: 0, closed: 0, stalled: 0, refused: 0 })
    b[o]++
  }
  let next = 0
  let sessionN = 0
  const t0 = Date.now()
  let lastProgress = t0

  const worker = async () => {
    let session: FuzzSession | undefined
    let sessionName = ''
    while (next < opts.cases) {
      const id = next++
      const rng = master.fork()
      const kind = pickKind(rng)
      let outcome: Outcome
      if (kind === 'epmd') outcome = await epmdCase(rng, t, id)
      else if (kind === 'pre') outcome = await preCase(rng, t, id)
      else if (kind === 'mid') outcome = await midCase(rng, t, id)
      else {
        if (!session || session.closed) {
          sessionName = `${prefix}s${sessionN++}@${host}`
          session = await FuzzSession.open(t, sessionName)
          if (session) report.handshakes++
        }
        if (!session) outcome = 'refused'
        else {
          const pk = kind.slice(5) as PostKind
          const frames = postFrames(rng, session, pk)
          for (const f of frames) report.bytesSent += f.length
          session.write(frames)
          // Raw bytes may leave the node waiting for the rest of a frame: a short wait tells. Other cases keep
          // the framing, so no answer means a problem unless the machine is very busy: wait long.
          outcome = await session.probe(pk === 'raw' ? 400 : pk === 'bomb' ? 5000 : 15_000)
          if (outcome === 'closed') {
            // Our Connection closes with 'connection_closed' / a socket error when the node hung up, and with
            // an ERR_ code when it could not decode what the node sent.
            if (/^ERR_/.test(session.closedReason ?? '')) report.undecodable.push(`${sessionName}: ${session.closedReason}`)
            else report.closedByNode.push(sessionName)
          }
          if (pk === 'valid' && outcome !== 'answered') {
            report.validRefusedDetail.push(`${sessionName} case ${id}: ${outcome} (${session.closedReason ?? 'no answer'})`)
          }
          if (outcome !== 'answered') {
            session.close()
            session = undefined
          }
        }
      }
      count(kind, outcome)
      report.cases++
      const now = Date.now()
      if (opts.onProgress && now - lastProgress > 2000) {
        lastProgress = now
        report.ms = now - t0
        report.casesPerSecond = Math.round((report.cases * 1000) / Math.max(1, report.ms))
        opts.onProgress(report)
      }
    }
    session?.close()
  }
  await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker))
  report.ms = Date.now() - t0
  report.casesPerSecond = Math.round((report.cases * 1000) / Math.max(1, report.ms))
  return report
}
