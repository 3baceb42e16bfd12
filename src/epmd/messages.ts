// EPMD requests and replies: OTP erts "Distribution Protocol", section "EPMD Protocol".
// Encode and decode only, no sockets. Requests travel as `Length:16, Request`; replies have no length
// prefix, so a reply is parsed incrementally and the caller says which request it answers.

import { EpmdArgumentError, EpmdProtocolError } from './errors.js'

export const EPMD_PORT = 4369

export const ALIVE2_REQ = 120
export const ALIVE2_X_RESP = 118
export const ALIVE2_RESP = 121
export const PORT_PLEASE2_REQ = 122
export const PORT2_RESP = 119
export const NAMES_REQ = 110
export const DUMP_REQ = 100
export const KILL_REQ = 107
export const STOP_REQ = 115

export const NODE_TYPE_NORMAL = 77
export const NODE_TYPE_HIDDEN = 72
export const PROTOCOL_TCP_IPV4 = 0
/** Distribution protocol versions this project speaks (6 = HANDSHAKE_23, OTP 23 and later). */
export const DIST_VERSION_HIGHEST = 6
export const DIST_VERSION_LOWEST = 6

/** epmd_int.h: a node name is at most 255 characters, UTF-8 encoded: 255 * 4 bytes. Extra has the same bound. */
export const MAXSYMLEN = 255 * 4
export const MAX_NAME_CHARS = 255
/** epmd_int.h INBUF_SIZE = 3 * MAXSYMLEN holds Length:16 + Request; epmd drops a request with Length + 2 >= INBUF_SIZE. */
export const MAX_REQUEST_LENGTH = 3 * MAXSYMLEN - 3

/** What ALIVE2_REQ registers and PORT2_RESP reports. */
export interface NodeInfo {
  port: number
  /** NODE_TYPE_NORMAL (77) or NODE_TYPE_HIDDEN (72). */
  nodeType: number
  /** PROTOCOL_TCP_IPV4 (0). */
  protocol: number
  highestVersion: number
  lowestVersion: number
  /** The alive name: the part of the node name before '@'. */
  name: string
  extra: Buffer
}

export type EpmdRequest =
  | ({ kind: 'ALIVE2_REQ' } & NodeInfo)
  | { kind: 'PORT_PLEASE2_REQ'; name: string }
  | { kind: 'NAMES_REQ' }
  | { kind: 'DUMP_REQ' }
  | { kind: 'KILL_REQ' }
  | { kind: 'STOP_REQ'; name: string }

export type EpmdRequestKind = EpmdRequest['kind']

export interface NameEntry {
  name: string
  port: number
}

export interface DumpEntry {
  /** 'active' for a registered node, 'old' for a name remembered after it unregistered. */
  state: 'active' | 'old'
  name: string
  port: number
  fd: number
}

export type EpmdReply =
  | { kind: 'ALIVE2_X_RESP'; result: number; creation: number }
  | { kind: 'ALIVE2_RESP'; result: number; creation: number }
  | { kind: 'PORT2_RESP'; result: number; node: NodeInfo | undefined }
  | { kind: 'NAMES_RESP'; epmdPort: number; names: NameEntry[] }
  | { kind: 'DUMP_RESP'; epmdPort: number; nodes: DumpEntry[] }
  | { kind: 'KILL_RESP'; ok: boolean }
  | { kind: 'STOP_OK_RESP' }
  | { kind: 'STOP_NOTOK_RESP' }

export type EpmdReplyKind = EpmdReply['kind']

const REQUEST_KIND: Record<number, EpmdRequestKind> = {
  [ALIVE2_REQ]: 'ALIVE2_REQ',
  [PORT_PLEASE2_REQ]: 'PORT_PLEASE2_REQ',
  [NAMES_REQ]: 'NAMES_REQ',
  [DUMP_REQ]: 'DUMP_REQ',
  [KILL_REQ]: 'KILL_REQ',
  [STOP_REQ]: 'STOP_REQ',
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeUtf8(bytes: Buffer, offset: number, what: string): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw new EpmdProtocolError(`${what} is not valid UTF-8`, offset)
  }
}

function checkUint(value: unknown, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new EpmdArgumentError(`${what} must be an integer in 0..${max}, got ${String(value)}`)
  }
  return value
}

/** A node name as EPMD accepts it: 1..255 characters, at most MAXSYMLEN bytes of UTF-8, no NUL. */
export function nodeNameBytes(name: unknown): Buffer {
  if (typeof name !== 'string' || name.length === 0) {
    throw new EpmdArgumentError(`node name must be a non-empty string, got ${JSON.stringify(name)}`)
  }
  if (name.includes('\0')) throw new EpmdArgumentError('node name must not contain NUL')
  if (/[\uD800-\uDFFF]/u.test(name)) throw new EpmdArgumentError('node name contains an unpaired surrogate')
  const bytes = Buffer.from(name, 'utf8')
  if (bytes.length > MAXSYMLEN || [...name].length > MAX_NAME_CHARS) {
    throw new EpmdArgumentError(`node name is longer than ${MAX_NAME_CHARS} characters`)
  }
  return bytes
}

function frame(body: Buffer): Buffer {
  if (body.length > MAX_REQUEST_LENGTH) {
    throw new EpmdArgumentError(`EPMD request of ${body.length} bytes exceeds ${MAX_REQUEST_LENGTH}`)
  }
  const out = Buffer.allocUnsafe(2 + body.length)
  out.writeUInt16BE(body.length, 0)
  body.copy(out, 2)
  return out
}

function encodeNodeInfo(tag: number, result: number | undefined, n: NodeInfo): Buffer {
  const name = nodeNameBytes(n.name)
  const extra = n.extra ?? Buffer.alloc(0)
  if (!Buffer.isBuffer(extra)) throw new EpmdArgumentError('extra must be a Buffer')
  if (extra.length > MAXSYMLEN) throw new EpmdArgumentError(`extra is longer than ${MAXSYMLEN} bytes`)
  const head = result === undefined ? 1 : 2
  const b = Buffer.allocUnsafe(head + 10 + name.length + 2 + extra.length)
  b[0] = tag
  if (result !== undefined) b[1] = checkUint(result, 255, 'result')
  let o = head
  b.writeUInt16BE(checkUint(n.port, 0xffff, 'port'), o)
  b[o + 2] = checkUint(n.nodeType, 255, 'nodeType')
  b[o + 3] = checkUint(n.protocol, 255, 'protocol')
  b.writeUInt16BE(checkUint(n.highestVersion, 0xffff, 'highestVersion'), o + 4)
  b.writeUInt16BE(checkUint(n.lowestVersion, 0xffff, 'lowestVersion'), o + 6)
  b.writeUInt16BE(name.length, o + 8)
  o += 10
  name.copy(b, o)
  o += name.length
  b.writeUInt16BE(extra.length, o)
  extra.copy(b, o + 2)
  return b
}

/** Encode a request with its 2-byte length prefix, ready for the socket. */
export function encodeRequest(req: EpmdRequest): Buffer {
  switch (req.kind) {
    case 'ALIVE2_REQ':
      return frame(encodeNodeInfo(ALIVE2_REQ, undefined, req))
    case 'PORT_PLEASE2_REQ':
      return frame(Buffer.concat([Buffer.of(PORT_PLEASE2_REQ), nodeNameBytes(req.name)]))
    case 'STOP_REQ':
      return frame(Buffer.concat([Buffer.of(STOP_REQ), nodeNameBytes(req.name)]))
    case 'NAMES_REQ':
      return frame(Buffer.of(NAMES_REQ))
    case 'DUMP_REQ':
      return frame(Buffer.of(DUMP_REQ))
    case 'KILL_REQ':
      return frame(Buffer.of(KILL_REQ))
    default:
      throw new EpmdArgumentError(`unknown EPMD request kind ${String((req as { kind: unknown }).kind)}`)
  }
}

/**
 * Decode one request body (without its length prefix). `base` is the body's offset in the stream,
 * used only for error offsets.
 */
export function decodeRequest(body: Buffer, base = 0): EpmdRequest {
  if (body.length === 0) throw new EpmdProtocolError('empty request', base)
  const kind = REQUEST_KIND[body[0]!]
  if (kind === undefined) throw new EpmdProtocolError(`unknown request tag ${body[0]}`, base)
  switch (kind) {
    case 'ALIVE2_REQ': {
      // 120, PortNo:16, NodeType:8, Protocol:8, HighestVersion:16, LowestVersion:16, Nlen:16, NodeName, Elen:16, Extra
      if (body.length < 14) throw new EpmdProtocolError('ALIVE2_REQ too short', base + body.length)
      const nlen = body.readUInt16BE(9)
      if (nlen === 0) throw new EpmdProtocolError('ALIVE2_REQ with an empty name', base + 9)
      if (13 + nlen > body.length) throw new EpmdProtocolError('ALIVE2_REQ name overruns the request', base + 9)
      const elen = body.readUInt16BE(11 + nlen)
      if (13 + nlen + elen > body.length) {
        throw new EpmdProtocolError('ALIVE2_REQ extra overruns the request', base + 11 + nlen)
      }
      return {
        kind,
        port: body.readUInt16BE(1),
        nodeType: body[3]!,
        protocol: body[4]!,
        highestVersion: body.readUInt16BE(5),
        lowestVersion: body.readUInt16BE(7),
        name: checkedName(body.subarray(11, 11 + nlen), base + 11),
        extra: Buffer.from(body.subarray(13 + nlen, 13 + nlen + elen)),
      }
    }
    case 'PORT_PLEASE2_REQ':
    case 'STOP_REQ': {
      // Tag, NodeName (N = Length - 1). Old clients NUL-terminate the name; epmd skips one trailing NUL.
      let end = body.length
      if (end > 1 && body[end - 1] === 0) end--
      if (end <= 1) throw new EpmdProtocolError(`${kind} without a name`, base + 1)
      return { kind, name: checkedName(body.subarray(1, end), base + 1) }
    }
    default:
      return { kind }
  }
}

function checkedName(bytes: Buffer, offset: number): string {
  if (bytes.length > MAXSYMLEN) throw new EpmdProtocolError('node name too long', offset)
  const nul = bytes.indexOf(0)
  if (nul >= 0) throw new EpmdProtocolError('node name contains NUL', offset + nul)
  const name = decodeUtf8(bytes, offset, 'node name')
  if ([...name].length > MAX_NAME_CHARS) throw new EpmdProtocolError('node name too long', offset)
  return name
}

/**
 * Parse one length-prefixed request from the start of `buf`. Returns undefined while more bytes are
 * needed. The announced length is checked against `maxLength` before the body is waited for, so an
 * oversized request is refused at once.
 */
export function parseRequest(
  buf: Buffer,
  maxLength = MAX_REQUEST_LENGTH,
): { request: EpmdRequest; consumed: number } | undefined {
  if (buf.length < 2) return undefined
  const len = buf.readUInt16BE(0)
  if (len === 0) throw new EpmdProtocolError('request of length 0', 0)
  if (len > maxLength) throw new EpmdProtocolError(`request length ${len} exceeds ${maxLength}`, 0)
  if (buf.length < 2 + len) return undefined
  return { request: decodeRequest(buf.subarray(2, 2 + len), 2), consumed: 2 + len }
}

/** Encode a reply as EPMD sends it (no length prefix). */
export function encodeReply(reply: EpmdReply): Buffer {
  switch (reply.kind) {
    case 'ALIVE2_X_RESP': {
      const b = Buffer.allocUnsafe(6)
      b[0] = ALIVE2_X_RESP
      b[1] = checkUint(reply.result, 255, 'result')
      b.writeUInt32BE(checkUint(reply.creation, 0xffffffff, 'creation'), 2)
      return b
    }
    case 'ALIVE2_RESP': {
      const b = Buffer.allocUnsafe(4)
      b[0] = ALIVE2_RESP
      b[1] = checkUint(reply.result, 255, 'result')
      b.writeUInt16BE(checkUint(reply.creation, 0xffff, 'creation'), 2)
      return b
    }
    case 'PORT2_RESP':
      if (reply.result !== 0 || reply.node === undefined) {
        // Result > 0: the packet is only [119, Result].
        return Buffer.of(PORT2_RESP, checkUint(reply.result || 1, 255, 'result'))
      }
      return encodeNodeInfo(PORT2_RESP, 0, reply.node)
    case 'NAMES_RESP': {
      // EPMDPortNo:32, then io:format("name ~ts at port ~p~n", [NodeName, Port]) per node.
      const lines = reply.names.map((n) => `name ${n.name} at port ${checkUint(n.port, 0xffff, 'port')}\n`)
      return Buffer.concat([u32(reply.epmdPort), Buffer.from(lines.join(''), 'utf8')])
    }
    case 'DUMP_RESP': {
      // epmd_srv.c writes each line followed by its C string terminator.
      const lines = reply.nodes.map((n) =>
        n.state === 'active'
          ? `active name     <${n.name}> at port ${n.port}, fd = ${n.fd}\n\0`
          : `old/unused name <${n.name}>, port = ${n.port}, fd = ${n.fd} \n\0`,
      )
      return Buffer.concat([u32(reply.epmdPort), Buffer.from(lines.join(''), 'utf8')])
    }
    case 'KILL_RESP':
      return Buffer.from(reply.ok ? 'OK' : 'NO', 'latin1')
    case 'STOP_OK_RESP':
      return Buffer.from('STOPPED', 'latin1')
    case 'STOP_NOTOK_RESP':
      return Buffer.from('NOEXIST', 'latin1')
    default:
      throw new EpmdArgumentError(`unknown EPMD reply kind ${String((reply as { kind: unknown }).kind)}`)
  }
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(checkUint(n, 0xffffffff, 'epmdPort'), 0)
  return b
}

/**
 * Parse the reply to `request` from the start of `buf`, which holds every byte received so far.
 * Returns undefined while more bytes are needed; the NAMES and DUMP replies end only when EPMD closes
 * the connection, so they parse only once `eof` is true. Throws EpmdProtocolError on bytes that cannot
 * be that reply.
 */
export function parseReply(
  request: EpmdRequestKind,
  buf: Buffer,
  eof = false,
): { reply: EpmdReply; consumed: number } | undefined {
  switch (request) {
    case 'ALIVE2_REQ': {
      if (buf.length < 1) return undefined
      if (buf[0] === ALIVE2_X_RESP) {
        // 118, Result:8, Creation:32
        if (buf.length < 6) return undefined
        return { reply: { kind: 'ALIVE2_X_RESP', result: buf[1]!, creation: buf.readUInt32BE(2) }, consumed: 6 }
      }
      if (buf[0] === ALIVE2_RESP) {
        // 121, Result:8, Creation:16
        if (buf.length < 4) return undefined
        return { reply: { kind: 'ALIVE2_RESP', result: buf[1]!, creation: buf.readUInt16BE(2) }, consumed: 4 }
      }
      throw new EpmdProtocolError(`expected ALIVE2_X_RESP or ALIVE2_RESP, got tag ${buf[0]}`, 0)
    }
    case 'PORT_PLEASE2_REQ': {
      if (buf.length < 1) return undefined
      if (buf[0] !== PORT2_RESP) throw new EpmdProtocolError(`expected PORT2_RESP, got tag ${buf[0]}`, 0)
      if (buf.length < 2) return undefined
      const result = buf[1]!
      if (result !== 0) return { reply: { kind: 'PORT2_RESP', result, node: undefined }, consumed: 2 }
      // 119, 0, PortNo:16, NodeType:8, Protocol:8, HighestVersion:16, LowestVersion:16, Nlen:16, NodeName, Elen:16, Extra
      if (buf.length < 12) return undefined
      const nlen = buf.readUInt16BE(10)
      if (buf.length < 14 + nlen) return undefined
      const elen = buf.readUInt16BE(12 + nlen)
      const end = 14 + nlen + elen
      if (buf.length < end) return undefined
      const node: NodeInfo = {
        port: buf.readUInt16BE(2),
        nodeType: buf[4]!,
        protocol: buf[5]!,
        highestVersion: buf.readUInt16BE(6),
        lowestVersion: buf.readUInt16BE(8),
        name: decodeUtf8(buf.subarray(12, 12 + nlen), 12, 'node name'),
        extra: Buffer.from(buf.subarray(14 + nlen, end)),
      }
      return { reply: { kind: 'PORT2_RESP', result: 0, node }, consumed: end }
    }
    case 'NAMES_REQ': {
      if (!eof || buf.length < 4) return undefined
      const names = parseLines(buf, 4, (line, at) => {
        const m = /^name (.+) at port (\d{1,5})$/su.exec(line)
        const port = m ? Number(m[2]) : NaN
        if (!m || port > 0xffff) throw new EpmdProtocolError(`bad NAMES_RESP line ${JSON.stringify(line)}`, at)
        return { name: m[1]!, port }
      })
      return { reply: { kind: 'NAMES_RESP', epmdPort: buf.readUInt32BE(0), names }, consumed: buf.length }
    }
    case 'DUMP_REQ': {
      if (!eof || buf.length < 4) return undefined
      const nodes = parseLines(buf, 4, (line, at): DumpEntry => {
        const active = /^active name\s+<(.*)> at port (\d{1,5}), fd = (-?\d+)$/su.exec(line)
        if (active) return { state: 'active', name: active[1]!, port: Number(active[2]), fd: Number(active[3]) }
        const old = /^old\/unused name\s+<(.*)>, port = (\d{1,5}), fd = (-?\d+) ?$/su.exec(line)
        if (old) return { state: 'old', name: old[1]!, port: Number(old[2]), fd: Number(old[3]) }
        throw new EpmdProtocolError(`bad DUMP_RESP line ${JSON.stringify(line)}`, at)
      })
      return { reply: { kind: 'DUMP_RESP', epmdPort: buf.readUInt32BE(0), nodes }, consumed: buf.length }
    }
    case 'KILL_REQ': {
      if (buf.length < 2) return undefined
      const text = buf.toString('latin1', 0, 2)
      if (text !== 'OK' && text !== 'NO') throw new EpmdProtocolError(`bad KILL_RESP ${JSON.stringify(text)}`, 0)
      return { reply: { kind: 'KILL_RESP', ok: text === 'OK' }, consumed: 2 }
    }
    case 'STOP_REQ': {
      if (buf.length < 7) return undefined
      const text = buf.toString('latin1', 0, 7)
      if (text === 'STOPPED') return { reply: { kind: 'STOP_OK_RESP' }, consumed: 7 }
      if (text === 'NOEXIST') return { reply: { kind: 'STOP_NOTOK_RESP' }, consumed: 7 }
      throw new EpmdProtocolError(`bad STOP_RESP ${JSON.stringify(text)}`, 0)
    }
    default:
      throw new EpmdArgumentError(`unknown EPMD request kind ${String(request)}`)
  }
}

/** Split the text after the port number into lines (NUL terminators dropped) and parse each. */
function parseLines<T>(buf: Buffer, start: number, parse: (line: string, offset: number) => T): T[] {
  const out: T[] = []
  let at = start
  while (at < buf.length) {
    let nl = buf.indexOf(0x0a, at)
    if (nl < 0) nl = buf.length
    let line = buf.subarray(at, nl)
    let lineStart = at
    while (line.length > 0 && line[0] === 0) {
      line = line.subarray(1)
      lineStart++
    }
    if (line.length > 0) out.push(parse(decodeUtf8(line, lineStart, 'line'), lineStart))
    at = nl + 1
  }
  return out
}
