// The connection setup: OTP erts "Distribution Protocol", section "Distribution Handshake" (version 6,
// DFLAG_HANDSHAKE_23), checked against kernel's dist_util.erl. Messages travel as `Length:16, Body`
// (`Length:32, Body` inside a TLS session, as inet_tls_dist frames them).
//
//   initiator (A)                      acceptor (B)
//   'N' Flags:64 Creation:32 Nlen:16 Name        ->    (old 'n' Version:16 Flags:32 Name also accepted by B)
//                                    <-  's' Status
//   's' true|false (after 'alive')   ->
//                                    <-  'N' Flags:64 Challenge:32 Creation:32 Nlen:16 Name
//   'c' FlagsHigh:32 Creation:32     ->    (only after an old 'n')
//   'r' Challenge:32 Digest:16       ->
//                                    <-  'a' Digest:16
//   Digest = MD5(Cookie ++ integer_to_list(Challenge))

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { atom, type Atom } from '../etf/terms.js'
import {
  CookieMismatchError,
  HandshakeAbortedError,
  HandshakeClosedError,
  HandshakeError,
  HandshakeProtocolError,
  HandshakeStatusError,
  HandshakeTimeoutError,
  MissingFlagsError,
} from './errors.js'
import {
  DEFAULT_FLAGS,
  DFLAG_HANDSHAKE_23,
  DFLAG_NAME_ME,
  DFLAG_PUBLISHED,
  expandFlags,
  missingFlags,
  REQUIRED_FLAGS,
} from './flags.js'
import { Framer } from './framer.js'

/** Default time for each handshake step, as net_setuptime (7 s). */
export const DEFAULT_SETUP_TIME = 7000
/** A handshake message is a name plus a few fixed fields; anything longer is not a handshake. */
const MAX_HANDSHAKE_MESSAGE = 8192

const TAG_SEND_NAME = 0x4e // 'N'
const TAG_OLD_SEND_NAME = 0x6e // 'n'
const TAG_STATUS = 0x73 // 's'
const TAG_COMPLEMENT = 0x63 // 'c'
const TAG_CHALLENGE_REPLY = 0x72 // 'r'
const TAG_CHALLENGE_ACK = 0x61 // 'a'

export type HandshakeStatus = 'ok' | 'ok_simultaneous' | 'nok' | 'not_allowed' | 'alive' | 'named'

export interface HandshakeCommonOptions {
  cookie: string
  /** Our creation, sent in 'N' messages (from EPMD's ALIVE2_X_RESP). */
  creation: number
  /** Flags offered; default DEFAULT_FLAGS (add DFLAG_PUBLISHED to appear as a normal node). */
  flags?: bigint
  /** Flags the peer must offer; default REQUIRED_FLAGS (the OTP 25 mandatory set). */
  requiredFlags?: bigint
  /** Milliseconds allowed for each step; default DEFAULT_SETUP_TIME. */
  timeout?: number
  signal?: AbortSignal
  /**
   * Size of each handshake message's length prefix: 2 over TCP ({packet, 2}, inet_tcp_dist), 4 inside a TLS
   * session (inet_tls_dist opens its socket with {packet, 4} and keeps it for the handshake). Default 2.
   */
  lengthBytes?: 2 | 4
}

export interface InitiateOptions extends HandshakeCommonOptions {
  /** Our full node name; with nameMe, only our host name. */
  name: string
  /** The node we believe we are calling: the name in its challenge must match. */
  peer?: string
  /** Ask the acceptor to name us (DFLAG_NAME_ME); the answer is status 'named:'. */
  nameMe?: boolean
  /**
   * Answer to status 'alive' (the acceptor still has a connection to a node of our name): true when we know
   * of no such connection (it is a stale one), false to give up. Default: true.
   */
  onAlive?: () => boolean | Promise<boolean>
}

/** What the acceptor learns from the first message. */
export interface PeerHello {
  /** Full node name, or only the host when nameMe. */
  name: string
  flags: bigint
  /** Undefined after an old 'n' until the 'c' complement arrives. */
  creation: number | undefined
  /** 5 for the old 'n' send_name, 6 for 'N'. */
  version: 5 | 6
  nameMe: boolean
}

export type AcceptDecision =
  | 'ok'
  | 'ok_simultaneous'
  | 'nok'
  | 'not_allowed'
  | 'alive'
  | { named: string; creation: number }

export interface AcceptOptions extends HandshakeCommonOptions {
  /** Our full node name. */
  name: string
  /**
   * The status to answer once the peer's name is known (after the mandatory-flag check). Default: 'ok', or
   * a generated name for a NAME_ME peer.
   */
  decide?: (hello: PeerHello) => AcceptDecision | Promise<AcceptDecision>
  /**
   * Runs after the peer proved the cookie and before our ack is sent — the point where OTP waits for an
   * old connection to die after status 'alive' was answered 'true'.
   */
  beforeAck?: (peer: string, status: HandshakeStatus) => void | Promise<void>
}

export interface HandshakeResult {
  role: 'initiator' | 'acceptor'
  peer: Atom
  /** The flags both sides use: ours AND the peer's. */
  flags: bigint
  /** The flags the peer offered (MANDATORY_25_DIGEST expanded); PUBLISHED here means a visible peer. */
  peerFlags: bigint
  /** The peer's creation. */
  creation: number
  /** Our node name: the given one, or the one assigned by 'named:'. */
  name: Atom
  /** Our creation: the given one, or the one assigned by 'named:'. */
  ourCreation: number
  status: HandshakeStatus
  /** Bytes that arrived after the last handshake message: the start of the connected phase. */
  tail: Buffer
}

export function genChallenge(): number {
  return randomBytes(4).readUInt32BE(0)
}

/** MD5(Cookie ++ integer_to_list(Challenge)); the cookie's characters are bytes, as in an Erlang iolist. */
export function genDigest(challenge: number, cookie: string): Buffer {
  return createHash('md5')
    .update(Buffer.from(cookie, 'latin1'))
    .update(String(challenge >>> 0))
    .digest()
}

/** dist_util:is_name_ok/2: `Name@Host` with both parts non-empty, or (NAME_ME) a non-empty host alone. */
export function isValidNodeName(name: string, nameMe = false): boolean {
  const parts = name.split('@')
  if (nameMe) return parts.length === 1 && parts[0].length > 0
  return parts.length === 2 && parts[0].length > 0 && parts[1].length > 0
}

/** The host part of `Name@Host` ('' when there is none). */
export const nodeHost = (name: string): string => (name.includes('@') ? name.slice(name.indexOf('@') + 1) : '')

/** A long name (-name): its host has dots, an FQDN or an address; a short name's (-sname) has none. */
export const isLongNodeName = (name: string): boolean => nodeHost(name).includes('.')

// --- message encoders/decoders (exported for tests) --------------------------------------------

export function encodeSendName(flags: bigint, creation: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8')
  const b = Buffer.allocUnsafe(15 + n.length)
  b[0] = TAG_SEND_NAME
  b.writeBigUInt64BE(flags, 1)
  b.writeUInt32BE(creation >>> 0, 9)
  b.writeUInt16BE(n.length, 13)
  n.copy(b, 15)
  return b
}

/** The pre-OTP 23 send_name: Version is always 5; only the low 32 flag bits fit. */
export function encodeOldSendName(flags: bigint, name: string): Buffer {
  const n = Buffer.from(name, 'utf8')
  const b = Buffer.allocUnsafe(7 + n.length)
  b[0] = TAG_OLD_SEND_NAME
  b.writeUInt16BE(5, 1)
  b.writeUInt32BE(Number(flags & 0xffffffffn), 3)
  n.copy(b, 7)
  return b
}

export function encodeStatus(status: string): Buffer {
  return Buffer.concat([Buffer.of(TAG_STATUS), Buffer.from(status, 'latin1')])
}

export function encodeNamedStatus(name: string, creation: number): Buffer {
  const n = Buffer.from(name, 'utf8')
  const b = Buffer.allocUnsafe(1 + 6 + 2 + n.length + 4)
  b[0] = TAG_STATUS
  b.write('named:', 1, 'latin1')
  b.writeUInt16BE(n.length, 7)
  n.copy(b, 9)
  b.writeUInt32BE(creation >>> 0, 9 + n.length)
  return b
}

export function encodeChallenge(flags: bigint, challenge: number, creation: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8')
  const b = Buffer.allocUnsafe(19 + n.length)
  b[0] = TAG_SEND_NAME
  b.writeBigUInt64BE(flags, 1)
  b.writeUInt32BE(challenge >>> 0, 9)
  b.writeUInt32BE(creation >>> 0, 13)
  b.writeUInt16BE(n.length, 17)
  n.copy(b, 19)
  return b
}

export function encodeComplement(flags: bigint, creation: number): Buffer {
  const b = Buffer.allocUnsafe(9)
  b[0] = TAG_COMPLEMENT
  b.writeUInt32BE(Number((flags >> 32n) & 0xffffffffn), 1)
  b.writeUInt32BE(creation >>> 0, 5)
  return b
}

export function encodeChallengeReply(challenge: number, digest: Buffer): Buffer {
  const b = Buffer.allocUnsafe(21)
  b[0] = TAG_CHALLENGE_REPLY
  b.writeUInt32BE(challenge >>> 0, 1)
  digest.copy(b, 5)
  return b
}

export function encodeChallengeAck(digest: Buffer): Buffer {
  return Buffer.concat([Buffer.of(TAG_CHALLENGE_ACK), digest])
}

function parseSendName(m: Buffer): PeerHello {
  if (m[0] === TAG_SEND_NAME) {
    if (m.length < 15) throw new HandshakeProtocolError(`short send_name (${m.length} bytes)`)
    const flags = m.readBigUInt64BE(1)
    const creation = m.readUInt32BE(9)
    const nlen = m.readUInt16BE(13)
    if (m.length < 15 + nlen) throw new HandshakeProtocolError('send_name name runs past the message')
    // Bytes after the name are allowed and ignored (the spec reserves them).
    const name = m.toString('utf8', 15, 15 + nlen)
    return { name, flags: expandFlags(flags), creation, version: 6, nameMe: (flags & DFLAG_NAME_ME) !== 0n }
  }
  if (m[0] === TAG_OLD_SEND_NAME) {
    if (m.length < 7) throw new HandshakeProtocolError(`short old send_name (${m.length} bytes)`)
    const flags = BigInt(m.readUInt32BE(3))
    const name = m.toString('utf8', 7)
    return { name, flags: expandFlags(flags), creation: undefined, version: 5, nameMe: false }
  }
  throw new HandshakeProtocolError(`expected send_name, got tag ${m[0]}`)
}

interface Challenge {
  flags: bigint
  challenge: number
  creation: number
  name: string
}

function parseChallenge(m: Buffer, peer?: string): Challenge {
  if (m[0] === TAG_OLD_SEND_NAME)
    throw new HandshakeProtocolError('peer answered with a version 5 challenge; version 6 is required', peer)
  if (m[0] !== TAG_SEND_NAME || m.length < 19)
    throw new HandshakeProtocolError(`expected challenge 'N', got tag ${m[0]} (${m.length} bytes)`, peer)
  const nlen = m.readUInt16BE(17)
  if (m.length < 19 + nlen) throw new HandshakeProtocolError('challenge name runs past the message', peer)
  return {
    flags: expandFlags(m.readBigUInt64BE(1)),
    challenge: m.readUInt32BE(9),
    creation: m.readUInt32BE(13),
    name: m.toString('utf8', 19, 19 + nlen),
  }
}

function digestEquals(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

// --- the channel: 2-byte frames over the socket, one step timeout, abort -----------------------

class Channel {
  private readonly framer: Framer
  private waiter: { resolve: (m: Buffer) => void; reject: (e: Error) => void } | undefined
  private failure: Error | undefined
  private timer: NodeJS.Timeout | undefined
  peer: string | undefined
  /** What we wait for, to say more than "closed" when the peer hangs up. */
  waitingFor = 'send_name'

  constructor(
    private readonly socket: Duplex,
    private readonly timeout: number,
    private readonly signal: AbortSignal | undefined,
    private readonly lengthBytes: 2 | 4 = 2,
  ) {
    this.framer = new Framer({ lengthBytes, maxFrameSize: MAX_HANDSHAKE_MESSAGE })
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('close', this.onEnd)
    socket.on('error', this.onError)
    signal?.addEventListener('abort', this.onAbort)
    if (signal?.aborted) this.onAbort()
  }

  private onData = (chunk: Buffer): void => {
    this.framer.push(chunk)
    this.deliver()
  }
  private onEnd = (): void =>
    this.fail(
      this.waitingFor === 'challenge_ack'
        ? this.digestRefused()
        : new HandshakeClosedError(`connection closed during handshake, waiting for ${this.waitingFor}`, this.peer),
    )
  private onError = (err: Error): void =>
    this.fail(
      // The close can come as a reset (ECONNRESET, EPIPE) as well as an end.
      this.waitingFor === 'challenge_ack'
        ? this.digestRefused(err)
        : new HandshakeClosedError(`socket error during handshake: ${err.message}`, this.peer, { cause: err }),
    )
  /** What erl does with a digest it refuses: it closes the connection, saying nothing. */
  private digestRefused(cause?: Error): CookieMismatchError {
    return new CookieMismatchError(
      'connection closed by the peer after our challenge reply: it refused our digest (a different cookie?)',
      this.peer,
      cause === undefined ? undefined : { cause },
    )
  }
  private onAbort = (): void =>
    this.fail(new HandshakeAbortedError('handshake aborted', this.peer, { cause: this.signal?.reason }))

  private deliver(): void {
    if (!this.waiter) return
    let m: Buffer | undefined
    try {
      m = this.framer.next()
    } catch (e) {
      this.fail(new HandshakeProtocolError(`handshake message too long: ${(e as Error).message}`, this.peer))
      return
    }
    if (m === undefined) return
    const w = this.waiter
    this.waiter = undefined
    clearTimeout(this.timer)
    if (m.length === 0) w.reject(new HandshakeProtocolError('empty handshake message', this.peer))
    else w.resolve(m)
  }

  private fail(e: Error): void {
    if (this.failure) return
    this.failure = e
    clearTimeout(this.timer)
    const w = this.waiter
    this.waiter = undefined
    w?.reject(e)
  }

  /** The next handshake message; the step timer runs while waiting (OTP resets it before each step). */
  recv(): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
      this.timer = setTimeout(() => this.fail(new HandshakeTimeoutError(this.timeout, this.peer)), this.timeout)
      this.deliver()
    })
  }

  send(body: Buffer): void {
    if (this.failure) throw this.failure
    const len = Buffer.allocUnsafe(this.lengthBytes)
    if (this.lengthBytes === 4) len.writeUInt32BE(body.length)
    else len.writeUInt16BE(body.length)
    this.socket.write(Buffer.concat([len, body]))
  }

  private detach(): void {
    clearTimeout(this.timer)
    this.socket.off('data', this.onData)
    this.socket.off('end', this.onEnd)
    this.socket.off('close', this.onEnd)
    this.socket.off('error', this.onError)
    this.signal?.removeEventListener('abort', this.onAbort)
  }

  /** Success: stop reading (paused, so nothing is lost) and hand over the bytes already received. */
  finish(): Buffer {
    this.socket.pause()
    this.detach()
    return this.framer.takeRest()
  }

  /** Failure: close the socket, after flushing a final status when one was written. */
  close(graceful: boolean): void {
    this.detach()
    // A late socket error must not become an unhandled 'error' event.
    this.socket.on('error', () => {})
    if (graceful) {
      this.socket.end()
      setTimeout(() => this.socket.destroy(), 1000).unref()
    } else this.socket.destroy()
  }
}

async function run<T>(
  ch: Channel,
  body: () => Promise<T>,
): Promise<T> {
  try {
    return await body()
  } catch (e) {
    ch.close(e instanceof HandshakeStatusError || e instanceof MissingFlagsError)
    if (e instanceof HandshakeError) throw e
    throw new HandshakeError(`handshake failed: ${(e as Error).message}`, ch.peer, { cause: e })
  }
}

/** Connects as A: sends our name, follows the acceptor's status, proves the cookie and checks its proof. */
export function initiateHandshake(socket: Duplex, opts: InitiateOptions): Promise<HandshakeResult> {
  const ch = new Channel(socket, opts.timeout ?? DEFAULT_SETUP_TIME, opts.signal, opts.lengthBytes)
  ch.peer = opts.peer
  const offered = (opts.flags ?? DEFAULT_FLAGS) | DFLAG_HANDSHAKE_23 | (opts.nameMe ? DFLAG_NAME_ME : 0n)
  const required = opts.requiredFlags ?? REQUIRED_FLAGS
  return run(ch, async () => {
    if (opts.nameMe ? !isValidNodeName(opts.name, true) : !isValidNodeName(opts.name))
      throw new HandshakeProtocolError(`invalid own node name '${opts.name}'`)
    ch.send(encodeSendName(offered, opts.nameMe ? 0 : opts.creation, opts.name))
    ch.waitingFor = 'status'

    let name = opts.name
    let ourCreation = opts.creation
    let status: HandshakeStatus
    const sm = await ch.recv()
    if (sm[0] !== TAG_STATUS) throw new HandshakeProtocolError(`expected status, got tag ${sm[0]}`, ch.peer)
    const text = sm.toString('latin1', 1)
    if (text.startsWith('named:')) {
      if (!opts.nameMe) throw new HandshakeStatusError('named', ch.peer)
      if (sm.length < 9) throw new HandshakeProtocolError('short named: status', ch.peer)
      const nlen = sm.readUInt16BE(7)
      if (sm.length < 9 + nlen + 4) throw new HandshakeProtocolError('named: status runs short', ch.peer)
      name = sm.toString('utf8', 9, 9 + nlen)
      ourCreation = sm.readUInt32BE(9 + nlen)
      const host = name.split('@')[1]
      if (!isValidNodeName(name) || host !== opts.name)
        throw new HandshakeProtocolError(`named: gave '${name}', not a name on host ${opts.name}`, ch.peer)
      status = 'named'
    } else if (opts.nameMe) {
      throw new HandshakeStatusError(text, ch.peer)
    } else if (text === 'ok' || text === 'ok_simultaneous') {
      status = text
    } else if (text === 'alive') {
      const goOn = opts.onAlive ? await opts.onAlive() : true
      ch.send(encodeStatus(goOn ? 'true' : 'false'))
      if (!goOn) throw new HandshakeStatusError('alive', ch.peer)
      status = 'alive'
    } else {
      throw new HandshakeStatusError(text, ch.peer)
    }

    ch.waitingFor = 'challenge'
    const c = parseChallenge(await ch.recv(), ch.peer)
    if (opts.peer !== undefined && c.name !== opts.peer)
      throw new HandshakeProtocolError(`challenge came from '${c.name}', not '${opts.peer}'`, ch.peer)
    if (!isValidNodeName(c.name)) throw new HandshakeProtocolError(`invalid peer name '${c.name}'`, ch.peer)
    ch.peer = c.name
    // As dist_util:do_setnode/1 insists: an acceptor that named us echoes NAME_ME in its challenge.
    if (opts.nameMe && (c.flags & DFLAG_NAME_ME) === 0n)
      throw new HandshakeProtocolError('the acceptor named us but its challenge lacks DFLAG_NAME_ME', c.name)
    const missing = missingFlags(c.flags, required)
    if (missing.length > 0) throw new MissingFlagsError(missing, c.name)

    const ours = genChallenge()
    ch.send(encodeChallengeReply(ours, genDigest(c.challenge, opts.cookie)))
    ch.waitingFor = 'challenge_ack'
    const ack = await ch.recv()
    if (ack[0] !== TAG_CHALLENGE_ACK || ack.length !== 17)
      throw new HandshakeProtocolError(`expected challenge_ack, got tag ${ack[0]} (${ack.length} bytes)`, c.name)
    if (!digestEquals(ack.subarray(1), genDigest(ours, opts.cookie)))
      throw new CookieMismatchError('invalid challenge ack: the peer does not share our cookie', c.name)

    return {
      role: 'initiator',
      peer: atom(c.name),
      flags: offered & c.flags & ~DFLAG_NAME_ME,
      peerFlags: c.flags,
      creation: c.creation,
      name: atom(name),
      ourCreation,
      status,
      tail: ch.finish(),
    }
  })
}

let dynamicNameCounter = 0

/** The name an acceptor gives a NAME_ME peer on `host`, like net_kernel's dynamic names. */
export function dynamicNodeName(host: string): string {
  dynamicNameCounter = (dynamicNameCounter + 1) % 1_000_000
  return `c${randomBytes(4).toString('hex')}${dynamicNameCounter}@${host}`
}

/** Accepts as B: reads the peer's name, answers a status, challenges it and proves our cookie in turn. */
export function acceptHandshake(socket: Duplex, opts: AcceptOptions): Promise<HandshakeResult> {
  const ch = new Channel(socket, opts.timeout ?? DEFAULT_SETUP_TIME, opts.signal, opts.lengthBytes)
  const offered = ((opts.flags ?? DEFAULT_FLAGS) | DFLAG_HANDSHAKE_23) & ~DFLAG_NAME_ME
  const required = opts.requiredFlags ?? REQUIRED_FLAGS
  return run(ch, async () => {
    const hello = parseSendName(await ch.recv())
    if (!isValidNodeName(hello.name, hello.nameMe))
      throw new HandshakeProtocolError(`invalid peer node name '${hello.name}'`)
    ch.peer = hello.name
    // An old 'n' carries only 32 flag bits: the high ones are checked once the complement has arrived.
    const check = (flags: bigint, mask: bigint) => {
      const missing = missingFlags(flags, required & mask)
      if (missing.length > 0) {
        ch.send(encodeStatus('not_allowed'))
        throw new MissingFlagsError(missing, ch.peer)
      }
    }
    check(hello.flags, hello.version === 5 ? 0xffffffffn : ~0n)

    const decision = opts.decide
      ? await opts.decide(hello)
      : hello.nameMe
        ? { named: dynamicNodeName(hello.name), creation: genCreation() }
        : 'ok'
    let status: HandshakeStatus
    let peerName = hello.name
    let peerCreation = hello.creation
    if (typeof decision === 'object') {
      if (!hello.nameMe) throw new HandshakeProtocolError('cannot name a peer that did not ask (no NAME_ME)', ch.peer)
      peerName = decision.named
      peerCreation = decision.creation
      ch.peer = peerName
      ch.send(encodeNamedStatus(decision.named, decision.creation))
      status = 'named'
    } else {
      if (hello.nameMe && (decision === 'ok' || decision === 'ok_simultaneous' || decision === 'alive'))
        throw new HandshakeProtocolError('a NAME_ME peer must be answered with a name', ch.peer)
      ch.send(encodeStatus(decision))
      if (decision === 'nok' || decision === 'not_allowed') throw new HandshakeStatusError(decision, ch.peer)
      if (decision === 'alive') {
        ch.waitingFor = 'status true/false'
        const r = await ch.recv()
        const answer = r[0] === TAG_STATUS ? r.toString('latin1', 1) : undefined
        if (answer === 'false') throw new HandshakeStatusError('alive', ch.peer)
        if (answer !== 'true') throw new HandshakeProtocolError(`expected status true/false after alive`, ch.peer)
      }
      status = decision
    }

    const ours = genChallenge()
    // dist_util:publish_flag/3: a NAME_ME peer gets NAME_ME echoed in place of PUBLISHED; it checks for it.
    const challengeFlags = hello.nameMe ? (offered & ~DFLAG_PUBLISHED) | DFLAG_NAME_ME : offered
    ch.send(encodeChallenge(challengeFlags, ours, opts.creation, opts.name))
    ch.waitingFor = hello.version === 5 ? 'complement' : 'challenge_reply'

    let peerFlags = hello.flags
    if (hello.version === 5) {
      const cm = await ch.recv()
      if (cm[0] !== TAG_COMPLEMENT || cm.length < 9)
        throw new HandshakeProtocolError(`expected complement 'c', got tag ${cm[0]}`, ch.peer)
      peerFlags = expandFlags(hello.flags | (BigInt(cm.readUInt32BE(1)) << 32n))
      peerCreation = cm.readUInt32BE(5)
      check(peerFlags, ~0n)
      ch.waitingFor = 'challenge_reply'
    }

    const reply = await ch.recv()
    if (reply[0] !== TAG_CHALLENGE_REPLY || reply.length !== 21)
      throw new HandshakeProtocolError(`expected challenge_reply, got tag ${reply[0]} (${reply.length} bytes)`, ch.peer)
    if (!digestEquals(reply.subarray(5, 21), genDigest(ours, opts.cookie)))
      throw new CookieMismatchError('invalid challenge reply: the peer does not share our cookie', ch.peer)
    const theirs = reply.readUInt32BE(1)
    if (opts.beforeAck) await opts.beforeAck(peerName, status)
    ch.send(encodeChallengeAck(genDigest(theirs, opts.cookie)))

    return {
      role: 'acceptor',
      peer: atom(peerName),
      flags: challengeFlags & peerFlags & ~DFLAG_NAME_ME,
      peerFlags: peerFlags & ~DFLAG_NAME_ME,
      creation: peerCreation ?? 0,
      name: atom(opts.name),
      ourCreation: opts.creation,
      status,
      tail: ch.finish(),
    }
  })
}

/** A random creation for a dynamically named peer: non-zero, as creation 0 means "unknown" on the wire. */
export function genCreation(): number {
  return (randomBytes(4).readUInt32BE(0) % 0xfffffffe) + 1
}
