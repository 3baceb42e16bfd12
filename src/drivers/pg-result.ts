// Query results as the seeds' Erlang terms, and query text / parameters from Erlang terms.
// Wire messages written here follow the PostgreSQL frontend/backend protocol ("Message Formats":
// Parse, Bind, Describe, Execute, Flush, Sync); results arrive through pg's Submittable interface as text,
// exactly what libpq's PQgetvalue gives, never parsed into JS dates or numbers.
import type { Connection, Submittable } from 'pg'
import { Float, ImproperList, atom, isAtom, listToString, tuple, type Term } from '../etf/terms.js'
import { formatTerm } from '../runtime/format.js'
import { isUtf8 } from 'node:buffer'
import { BadRequestError, InvalidEncodingError } from './errors.js'
import { NO_CONNECTION, SERVER_CLOSED_CONNECTION, formatServerError } from './pgerror.js'

/** How a session encodes results: the seed's strings, or binaries (connect/2 option `binary`). */
export interface ResultMode {
  /** Values and names as binaries, NULL as `null`, counts as integers. */
  binary: boolean
  /** Strings as Unicode code points instead of the UTF-8 bytes libpq hands out (option `unicode`). */
  unicode: boolean
}

export const SEED_MODE: ResultMode = Object.freeze({ binary: false, unicode: false })

const OK = atom('ok')
const ERROR = atom('error')
const NULL = atom('null')
const BYTEA_OID = 17
const UUID_OID = 2950

/** connect/2 options: a list of `binary`, `list`, `unicode`. */
export function parseConnectOptions(opts: Term): ResultMode {
  const list = opts === '' ? [] : opts
  if (!Array.isArray(list)) throw new BadRequestError(`connect options must be a list, got ${show(opts)}`)
  const mode = { binary: false, unicode: false }
  for (const o of list) {
    if (isAtom(o, 'binary')) mode.binary = true
    else if (isAtom(o, 'list')) mode.binary = false
    else if (isAtom(o, 'unicode')) mode.unicode = true
    else throw new BadRequestError(`unknown connect option ${show(o)} (expected binary, list or unicode)`)
  }
  return mode
}

/** A string as the seed returns it: UTF-8 bytes as a charlist (ASCII needs no work). */
export function utf8ByteString(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1')
}

/** The text the session gives back for a string (names, values, error messages) in `mode`. */
export function textTerm(s: string, mode: ResultMode): Term {
  if (s === '') return []
  return mode.unicode ? s : utf8ByteString(s)
}

/**
 * Text sent by Erlang (a query, a string parameter) as a JS string: a binary is UTF-8; a charlist whose
 * code points are all bytes and form valid UTF-8 is taken as UTF-8 (the seed's convention); any other
 * charlist is code points; iolists are flattened. Anything else is a BadRequestError.
 */
export function termText(t: Term, what: string): string {
  let s: string
  if (Buffer.isBuffer(t)) {
    // Bytes go to the server as they are with libpq, and it refuses what is not UTF-8; decoded here they
    // would become U+FFFD and run: refused with the server's text instead.
    if (!isUtf8(t)) throw new InvalidEncodingError(invalidByteSequence(t))
    return t.toString('utf8')
  } else if (typeof t === 'string') s = bytesAsUtf8(t)
  else if (Array.isArray(t)) {
    const l = listToString(t)
    s = bytesAsUtf8(l !== undefined ? l : flattenIolist(t, what))
  } else throw new BadRequestError(`${what} must be a string or a binary, got ${show(t)}`)
  // Code points (the unicode convention) that include a lone surrogate have no UTF-8 form.
  if (LONE_SURROGATE.test(s)) throw new BadRequestError(`${what} is not valid Unicode: it holds a lone surrogate`)
  return s
}

/** In a `u` regex a pair is one code point, so this matches only a surrogate without its other half. */
const LONE_SURROGATE = /\p{Cs}/u

/** PostgreSQL's report_invalid_encoding for UTF-8 bytes that are not: the bytes of the first bad character. */
export function invalidByteSequence(b: Uint8Array): string {
  let i = 0
  while (i < b.length) {
    const c = b[i]
    const len = c < 0x80 ? 1 : (c & 0xe0) === 0xc0 ? 2 : (c & 0xf0) === 0xe0 ? 3 : (c & 0xf8) === 0xf0 ? 4 : 1
    if (c >= 0x80 && !utf8Legal(b, i, len)) {
      const bytes = Array.from(b.subarray(i, Math.min(i + len, b.length, i + 8)), (x) => `0x${x.toString(16).padStart(2, '0')}`)
      return `ERROR:  invalid byte sequence for encoding "UTF8": ${bytes.join(' ')}\n`
    }
    i += len
  }
  return 'ERROR:  invalid byte sequence for encoding "UTF8"\n'
}

/** pg_utf8_islegal: the len bytes at i form one legal character (the lead byte says len). */
function utf8Legal(b: Uint8Array, i: number, len: number): boolean {
  if (len === 1 || i + len > b.length) return false
  const lead = b[i]
  for (let j = 2; j < len; j++) if (b[i + j] < 0x80 || b[i + j] > 0xbf) return false
  const a = b[i + 1]
  const [lo, hi] = lead === 0xe0 ? [0xa0, 0xbf] : lead === 0xed ? [0x80, 0x9f] : lead === 0xf0 ? [0x90, 0xbf] : lead === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf]
  if (a < lo || a > hi) return false
  return lead >= 0xc2 && lead <= 0xf4
}

function bytesAsUtf8(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(s) || /[^\x00-\xff]/.test(s)) return s
  const bytes = Buffer.from(s, 'latin1')
  const decoded = bytes.toString('utf8')
  return Buffer.byteLength(decoded, 'utf8') === bytes.length && !decoded.includes('\ufffd') ? decoded : s
}

function flattenIolist(t: Term[], what: string): string {
  const parts: Buffer[] = []
  const walk = (x: Term, depth: number): void => {
    if (depth > 100) throw new BadRequestError(`${what} is nested too deeply`)
    if (Buffer.isBuffer(x)) parts.push(x)
    else if (typeof x === 'string') parts.push(Buffer.from(x, 'latin1'))
    else if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 255) parts.push(Buffer.of(x))
    else if (Array.isArray(x)) for (const y of x) walk(y, depth + 1)
    else if (x instanceof ImproperList && Buffer.isBuffer(x.tail)) {
      walk(x.elements, depth + 1)
      parts.push(x.tail)
    } else throw new BadRequestError(`${what} must be a string or a binary, got ${show(t)}`)
  }
  walk(t, 0)
  return Buffer.concat(parts).toString('latin1')
}

/**
 * One parameter of select/3, ready for Bind: a string is text; a Buffer (an Erlang binary) is sent by reference,
 * as the value's text or, where its parameter's type takes those bytes as they are, in binary format
 * (paramFormats).
 */
export type ParamValue = string | Buffer | null

/**
 * select/3 parameters: strings, integers and floats as text; `null`, `undefined` and `nil` (Elixir's nil) as SQL
 * NULL; true/false as booleans; binaries as they are (their format is chosen once the server has said the
 * parameters' types, see paramFormats).
 */
export function paramValues(params: Term): ParamValue[] {
  const list = params === '' ? [] : params
  if (typeof list === 'string') return Array.from(list, (c) => String(c.codePointAt(0)))
  if (!Array.isArray(list)) throw new BadRequestError(`parameters must be a list, got ${show(params)}`)
  if (list.length > 65535) throw new BadRequestError(`too many parameters: ${list.length} (at most 65535)`)
  const values = list.map((p, i) => paramValue(p, i + 1))
  // With a binary among them the server is asked for their types, and pg reads the count of its answer as a
  // signed 16-bit number: more than 32767 would break that connection's reading.
  if (values.length > 32767 && values.some((v) => Buffer.isBuffer(v)))
    throw new BadRequestError(`too many parameters with a binary among them: ${values.length} (at most 32767; pass the values as strings)`)
  return values
}

function paramValue(p: Term, n: number): ParamValue {
  if (Buffer.isBuffer(p)) return p
  if (typeof p === 'string') return bytesAsUtf8(p)
  if (typeof p === 'number') return Number.isFinite(p) ? String(p) : p > 0 ? 'Infinity' : p < 0 ? '-Infinity' : 'NaN'
  if (typeof p === 'bigint') return p.toString()
  if (typeof p === 'boolean') return p ? 'true' : 'false'
  if (p instanceof Float) return String(p.value)
  if (isAtom(p, 'null') || isAtom(p, 'undefined') || isAtom(p, 'nil')) return null
  if (Array.isArray(p)) return termText(p, `parameter $${n}`)
  throw new BadRequestError(`parameter $${n} must be a string, binary, number, boolean or null, got ${show(p)}`)
}

/**
 * PQcmdTuples: the row count of a command tag for INSERT, UPDATE, DELETE, SELECT (CREATE TABLE AS,
 * SELECT INTO), MERGE, MOVE, FETCH and COPY; '' for any other command.
 */
export function cmdTuples(tag: string): string {
  let rest: string
  if (tag.startsWith('INSERT ')) {
    const sp = tag.indexOf(' ', 7)
    if (sp < 0) return ''
    rest = tag.slice(sp + 1)
  } else if (tag.startsWith('SELECT ') || tag.startsWith('DELETE ') || tag.startsWith('UPDATE ')) rest = tag.slice(7)
  else if (tag.startsWith('FETCH ') || tag.startsWith('MERGE ')) rest = tag.slice(6)
  else if (tag.startsWith('MOVE ') || tag.startsWith('COPY ')) rest = tag.slice(5)
  else return ''
  return /^\d+$/.test(rest) ? rest : ''
}

/** bytea's text output (hex `\x..` or the old escape format) to its bytes. */
export function byteaBytes(text: string): Buffer {
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex')
  const out = Buffer.allocUnsafe(text.length)
  let n = 0
  for (let i = 0; i < text.length; ) {
    if (text[i] === '\\') {
      if (text[i + 1] === '\\') {
        out[n++] = 0x5c
        i += 2
      } else {
        out[n++] = parseInt(text.slice(i + 1, i + 4), 8)
        i += 4
      }
    } else out[n++] = text.charCodeAt(i++)
  }
  return out.subarray(0, n)
}

interface FieldInfo {
  name: string
  dataTypeID: number
}

/**
 * Collects the results of one PQexec-style request and encodes the one libpq would return: the last
 * result, or the first error; with `first`, the first result (what PQgetResult gives first, the rest
 * cleared), and what follows it is not encoded at all. Rows are encoded as they arrive; nothing is parsed
 * into JS values.
 */
export class ResultEncoder {
  private fields: FieldInfo[] | undefined
  private rows: Term[] = []
  private last: Term | undefined

  constructor(
    readonly mode: ResultMode,
    private readonly first = false,
  ) {}

  /** With `first`, once the first result is complete: the rest is ignored. */
  get settled(): boolean {
    return this.first && this.last !== undefined
  }

  rowDescription(fields: readonly FieldInfo[]): void {
    if (this.settled) return
    this.fields = fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }))
    this.rows = [this.fields.map((f) => this.name(f.name))]
  }

  dataRow(values: readonly (string | null)[]): void {
    const fields = this.fields
    if (!fields) return
    const row = new Array<Term>(values.length)
    for (let i = 0; i < values.length; i++) row[i] = this.value(values[i], fields[i])
    this.rows.push(row)
  }

  commandComplete(tag: string): void {
    if (this.settled) return
    if (this.fields) {
      this.last = tuple(OK, this.rows)
      this.fields = undefined
      this.rows = []
      return
    }
    const n = cmdTuples(tag)
    if (this.mode.binary) this.last = tuple(OK, n === '' ? NULL : Number(n))
    else this.last = tuple(OK, n === '' ? [] : n)
  }

  /** A row-returning statement cut short (a portal suspended): the rows so far are its result. */
  flushRows(): void {
    if (this.fields) this.commandComplete('')
  }

  /** PGRES_EMPTY_QUERY: the seed encodes PQerrorMessage, which is empty then. */
  emptyQuery(): void {
    if (this.settled) return
    this.last = tuple(ERROR, [])
  }

  /** The term for the request: the last result, or {ok, []} if the server sent nothing at all. */
  result(): Term {
    this.flushRows()
    return this.last ?? this.emptyResult()
  }

  error(text: string): Term {
    return tuple(ERROR, textTerm(text, { binary: false, unicode: this.mode.unicode }))
  }

  private emptyResult(): Term {
    return this.mode.binary ? tuple(OK, NULL) : tuple(OK, [])
  }

  private name(s: string): Term {
    return this.mode.binary ? Buffer.from(s, 'utf8') : textTerm(s, this.mode)
  }

  private value(v: string | null, f: FieldInfo | undefined): Term {
    if (v === null) return this.mode.binary ? NULL : []
    if (!this.mode.binary) return textTerm(v, this.mode)
    if (f?.dataTypeID === BYTEA_OID) return byteaBytes(v)
    return Buffer.from(v, 'utf8')
  }
}

// ---------------------------------------------------------------------------------------------
// The query itself, as a pg Submittable

const isServerError = (err: unknown): boolean =>
  !!err && typeof err === 'object' && 'severity' in err && typeof (err as { message?: unknown }).message === 'string'

/** libpq's text for what pg reports: a server ErrorResponse, or the socket going away mid-query. */
function errorText(err: unknown, query: string): string {
  if (isServerError(err)) {
    const e = err as unknown as { message: string } & Record<string, string | undefined>
    // The server sends FATAL and PANIC errors just before it closes the connection; libpq then also
    // reports the closed connection.
    const closing = e.severity === 'FATAL' || e.severity === 'PANIC' ? SERVER_CLOSED_CONNECTION : ''
    return formatServerError(
      {
        severity: e.severity,
        message: e.message,
        detail: e.detail,
        hint: e.hint,
        position: e.position,
        internalPosition: e.internalPosition,
        internalQuery: e.internalQuery,
        where: e.where,
      },
      query,
    ) + closing
  }
  const message = err instanceof Error ? err.message : String(err)
  if (/terminated|ECONNRESET|EPIPE|closed/i.test(message)) return SERVER_CLOSED_CONNECTION
  if (/not queryable|not connected/i.test(message)) return NO_CONNECTION
  return `${message}\n`
}

// Constant protocol messages: Describe portal '', Describe statement '', Execute portal '' with no row limit,
// Flush, Sync.
const DESCRIBE_PORTAL = Buffer.from([0x44, 0, 0, 0, 6, 0x50, 0])
const DESCRIBE_STATEMENT = Buffer.from([0x44, 0, 0, 0, 6, 0x53, 0])
const EXECUTE_ALL = Buffer.from([0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0])
const FLUSH = Buffer.from([0x48, 0, 0, 0, 4])
const SYNC = Buffer.from([0x53, 0, 0, 0, 4])

/** Bind's format codes. */
export const TEXT_FORMAT = 0
export const BINARY_FORMAT = 1

/**
 * Bind's format for each parameter, given the types the server inferred for them (ParameterDescription's OIDs).
 * A binary goes in binary format only where its bytes are that binary form as they are: any binary for
 * `bytea`, 16 bytes for `uuid`. Everywhere else it goes as text, its bytes being the value's text as with
 * PQexecParams in text format: `<<"1000">>` is 1000 for an int, and text stays byte for byte (the server refuses
 * bytes that are not UTF-8, or a NUL, with its own "invalid byte sequence" error). Strings are always text.
 */
export function paramFormats(params: readonly ParamValue[], types: readonly number[]): number[] {
  return params.map((p, i) =>
    Buffer.isBuffer(p) && (types[i] === BYTEA_OID || (types[i] === UUID_OID && p.length === 16)) ? BINARY_FORMAT : TEXT_FORMAT,
  )
}

/** Parse: 'P' Int32 len, String name '' (the unnamed statement), String query, Int16 0 parameter types. */
export function parseMessage(text: string): Buffer {
  const textBytes = Buffer.byteLength(text, 'utf8')
  const parse = Buffer.allocUnsafe(1 + 4 + 1 + textBytes + 1 + 2)
  parse[0] = 0x50
  parse.writeInt32BE(parse.length - 1, 1)
  parse[5] = 0
  parse.write(text, 6, 'utf8')
  parse[6 + textBytes] = 0
  parse.writeInt16BE(0, 7 + textBytes)
  return parse
}

/**
 * The Bind message of the unnamed statement with `params` in `formats`, as a list of chunks: Buffer parameters
 * longer than `largeThreshold` appear by reference (written with the socket's writev, never copied here),
 * whatever their format.
 */
export function bindChunks(params: readonly ParamValue[], formats: readonly number[], largeThreshold = 64): Buffer[] {
  // Bind: 'B' Int32 len, String portal '', String statement '', Int16 n, Int16[n] formats,
  //       Int16 n, n × (Int32 len | -1, Byte[len]), Int16 0 result formats (all text)
  const chunks: Buffer[] = []
  const n = params.length
  const encoded: (Buffer | null)[] = params.map((p) => (p === null ? null : typeof p === 'string' ? Buffer.from(p, 'utf8') : p))
  let total = 4 + 1 + 1 + 2 + 2 * n + 2 + 4 * n + 2
  for (const b of encoded) if (b) total += b.length
  let head = Buffer.allocUnsafe(1 + 4 + 2 + 2 + 2 * n + 2)
  head[0] = 0x42
  head.writeInt32BE(total, 1)
  head[5] = 0
  head[6] = 0
  head.writeUInt16BE(n, 7)
  for (let i = 0; i < n; i++) head.writeInt16BE(formats[i] ?? TEXT_FORMAT, 9 + 2 * i)
  head.writeUInt16BE(n, 9 + 2 * n)
  let pending: Buffer[] = [head]
  let pendingLen = head.length
  const flushPending = () => {
    if (pending.length === 1) chunks.push(pending[0])
    else if (pending.length > 1) chunks.push(Buffer.concat(pending, pendingLen))
    pending = []
    pendingLen = 0
  }
  const push = (b: Buffer) => {
    if (b.length > largeThreshold) {
      flushPending()
      chunks.push(b)
    } else {
      pending.push(b)
      pendingLen += b.length
    }
  }
  for (const b of encoded) {
    const len = Buffer.allocUnsafe(4)
    len.writeInt32BE(b ? b.length : -1, 0)
    push(len)
    if (b && b.length > 0) push(b)
  }
  head = Buffer.alloc(2)
  push(head)
  flushPending()
  return chunks
}

/** Parse then Bind (bindChunks), all parameters in text format unless `formats` says otherwise. */
export function extendedQueryChunks(
  text: string,
  params: readonly ParamValue[],
  formats: readonly number[] = params.map(() => TEXT_FORMAT),
  largeThreshold = 64,
): Buffer[] {
  return [parseMessage(text), ...bindChunks(params, formats, largeThreshold)]
}

/**
 * Holds back a session's queries while a CancelRequest is on its way (`pending`): a query whose turn comes
 * meanwhile is sent once it settles.
 */
export interface CancelGate {
  pending: Promise<unknown> | undefined
}

/** The server's text for a statement cancelled on request (libpq's PQerrorMessage then). */
export const QUERY_CANCELED = 'ERROR:  canceling statement due to user request\n'

type Stream = NodeJS.WritableStream & { writable?: boolean; cork?: () => void; uncork?: () => void }

/**
 * One request on a pg Client: select/2 runs `text` with the simple query protocol (several statements
 * allowed, as PQexec); select/3 runs one statement with parameters (as PQexecParams). `done` gets the
 * reply term once, when the server is ready for the next query or the connection failed.
 *
 * select/3 with no binary parameter is one round trip: Parse, Bind (all text), Describe portal, Execute, Sync.
 * With a binary parameter the format of each depends on its type (paramFormats), which the server infers: first
 * Parse, Describe statement, Flush; on its ParameterDescription, Bind, Execute, Sync (the statement's
 * RowDescription, which follows, describes the rows). pg's Client does not route ParameterDescription to the
 * query, so the query listens on the connection while it waits for it. If Parse or Describe fails, the server
 * skips everything up to a Sync, so the query sends one: the ReadyForQuery that answers it is what lets pg send
 * the next queued query.
 *
 * A query given up by its caller (cancel()) that has not been executed is never executed: when its turn
 * comes (or its parameters are described) it sends only a Sync, and answers with the server's cancel text.
 * One that is executing is for the session to cancel on the server (a CancelRequest); while that request is
 * on its way, the `gate` holds back the session's next query, so the request cannot reach a later one.
 */
export class TermQuery implements Submittable {
  private readonly enc: ResultEncoder
  private finished = false
  /** Whether the query reached the socket: one still queued in pg when the connection died never did. */
  private submitted = false
  /** Waiting for the ParameterDescription on this connection (Parse, Describe statement and Flush sent). */
  private describing: Connection | undefined
  /** Sent for execution (a Query, or an Execute): from here only the server can stop it. */
  private executing = false
  private cancelled = false

  constructor(
    readonly text: string,
    readonly params: readonly ParamValue[] | undefined,
    mode: ResultMode,
    /** Answer with the first result of several statements (pg_async) instead of the last (pg_sync). */
    first: boolean,
    private readonly done: (reply: Term) => void,
    private readonly gate?: CancelGate,
  ) {
    this.enc = new ResultEncoder(mode, first)
  }

  /**
   * The caller has given up on this query. Returns true if it is executing on the server, where only a
   * CancelRequest can stop it; otherwise it never will be executed (or is over already).
   */
  cancel(): boolean {
    if (this.finished) return false
    this.cancelled = true
    return this.executing
  }

  submit(connection: Connection): void {
    this.submitted = true
    const held = this.gate?.pending
    if (held) void held.then(() => this.send(connection))
    else this.send(connection)
  }

  private send(connection: Connection): void {
    this.writeStep(connection, () => this.sendNow(connection))
  }

  /**
   * Runs a step that writes to the server. What could not be written (an encoding limit) is this query's error,
   * never an exception out of pg's socket handlers (that would end the process); the Sync brings the
   * ReadyForQuery pg waits for to go on.
   */
  private writeStep(connection: Connection, step: () => void): void {
    try {
      step()
    } catch (e) {
      this.stopDescribing()
      this.executing = false
      write(connection.stream, [SYNC])
      this.finish(this.enc.error(`ts-cnode: could not send the query: ${e instanceof Error ? e.message : String(e)}\n`))
    }
  }

  private sendNow(connection: Connection): void {
    // The connection failed while the query was held back: it has its answer.
    if (this.finished) return
    if (this.cancelled) {
      write(connection.stream, [SYNC])
      return
    }
    const params = this.params
    if (params === undefined) {
      this.executing = true
      connection.query(this.text)
      return
    }
    if (!params.some((p) => Buffer.isBuffer(p))) {
      this.executing = true
      write(connection.stream, [...extendedQueryChunks(this.text, params), DESCRIBE_PORTAL, EXECUTE_ALL, SYNC])
      return
    }
    this.describing = connection
    connection.on('parameterDescription', this.described)
    write(connection.stream, [parseMessage(this.text), DESCRIBE_STATEMENT, FLUSH])
  }

  private readonly described = (msg: { dataTypeIDs: number[] }): void => {
    const connection = this.describing
    if (connection) this.writeStep(connection, () => this.bindDescribed(connection, msg))
  }

  private bindDescribed(connection: Connection, msg: { dataTypeIDs: number[] }): void {
    this.stopDescribing()
    if (this.cancelled) {
      write(connection.stream, [SYNC])
      return
    }
    this.executing = true
    const params = this.params!
    write(connection.stream, [...bindChunks(params, paramFormats(params, msg.dataTypeIDs)), EXECUTE_ALL, SYNC])
  }

  private stopDescribing(): void {
    this.describing?.off('parameterDescription', this.described)
    this.describing = undefined
  }

  handleRowDescription(msg: { fields: FieldInfo[] }): void {
    this.enc.rowDescription(msg.fields)
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    this.enc.dataRow(msg.fields)
  }

  handleCommandComplete(msg: { text: string }): void {
    this.enc.commandComplete(msg.text)
  }

  handleEmptyQuery(): void {
    this.enc.emptyQuery()
  }

  handlePortalSuspended(): void {
    this.enc.flushRows()
  }

  handleCopyInResponse(connection: Connection & { sendCopyFail?: (m: string) => void }): void {
    connection.sendCopyFail?.('COPY FROM STDIN is not supported by ts-cnode')
  }

  handleCopyData(): void {}

  handleError(err: unknown): void {
    const connection = this.describing
    if (connection) {
      this.stopDescribing()
      // Parse or Describe failed: the server now waits for a Sync. pg has cleared its active query but sends the
      // next one only on ReadyForQuery, which this Sync brings. (A socket error needs nothing sent.)
      if (isServerError(err)) write(connection.stream, [SYNC])
    }
    // libpq sends a query only on a live connection; one that never left pg's queue meets
    // PQsendQueryStart's "no connection" instead of the closed socket.
    // After the first result, pg_async's answer is that result: the seed clears what follows, errors too.
    if (this.enc.settled) return this.finish(this.enc.result())
    const text = this.submitted || isServerError(err) ? errorText(err, this.text) : NO_CONNECTION
    this.finish(this.enc.error(text))
  }

  handleReadyForQuery(): void {
    this.stopDescribing()
    // Given up before it was executed: only a Sync went (after Parse and Describe, perhaps).
    if (this.cancelled && !this.executing) return this.finish(this.enc.error(QUERY_CANCELED))
    this.finish(this.enc.result())
  }

  private finish(reply: Term): void {
    if (this.finished) return
    this.finished = true
    this.done(reply)
  }
}

/** Writes `chunks` as one batch (writev); nothing on a socket that is gone. */
function write(stream: Stream, chunks: readonly Buffer[]): void {
  if (stream.writable === false) return
  stream.cork?.()
  try {
    for (const c of chunks) stream.write(c)
  } finally {
    stream.uncork?.()
  }
}

/** A term in an error text, as Erlang's ~p prints it (cut short when deep or long). */
const show = (t: Term): string => formatTerm(t)
