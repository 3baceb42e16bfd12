// libpq connection strings (PostgreSQL docs, libpq "Connection Strings"; fe-connect.c conninfo_parse,
// conninfo_uri_parse_options): both the keyword/value form and postgres:// URIs, with libpq's own
// error texts, then defaults as libpq applies them (environment, compiled-in values).
import * as os from 'node:os'
import { ConninfoError } from './errors.js'

/** The keywords libpq 15 accepts (PQconndefaults), with their environment variable and compiled default. */
export const LIBPQ_KEYWORDS: ReadonlyMap<string, { env?: string; compiled?: string }> = new Map([
  ['service', { env: 'PGSERVICE' }],
  ['user', { env: 'PGUSER' }],
  ['password', { env: 'PGPASSWORD' }],
  ['passfile', { env: 'PGPASSFILE' }],
  ['channel_binding', { env: 'PGCHANNELBINDING', compiled: 'prefer' }],
  ['connect_timeout', { env: 'PGCONNECT_TIMEOUT' }],
  ['dbname', { env: 'PGDATABASE' }],
  ['host', { env: 'PGHOST' }],
  ['hostaddr', { env: 'PGHOSTADDR' }],
  ['port', { env: 'PGPORT', compiled: '5432' }],
  ['client_encoding', { env: 'PGCLIENTENCODING' }],
  ['options', { env: 'PGOPTIONS', compiled: '' }],
  ['application_name', { env: 'PGAPPNAME' }],
  ['fallback_application_name', {}],
  ['keepalives', {}],
  ['keepalives_idle', {}],
  ['keepalives_interval', {}],
  ['keepalives_count', {}],
  ['tcp_user_timeout', {}],
  ['sslmode', { env: 'PGSSLMODE', compiled: 'prefer' }],
  ['sslcompression', { env: 'PGSSLCOMPRESSION', compiled: '0' }],
  ['sslcert', { env: 'PGSSLCERT' }],
  ['sslkey', { env: 'PGSSLKEY' }],
  ['sslpassword', {}],
  ['sslrootcert', { env: 'PGSSLROOTCERT' }],
  ['sslcrl', { env: 'PGSSLCRL' }],
  ['sslcrldir', { env: 'PGSSLCRLDIR' }],
  ['sslsni', { env: 'PGSSLSNI', compiled: '1' }],
  ['requirepeer', { env: 'PGREQUIREPEER' }],
  ['ssl_min_protocol_version', { env: 'PGSSLMINPROTOCOLVERSION', compiled: 'TLSv1.2' }],
  ['ssl_max_protocol_version', { env: 'PGSSLMAXPROTOCOLVERSION' }],
  ['gssencmode', { env: 'PGGSSENCMODE', compiled: 'prefer' }],
  ['krbsrvname', { env: 'PGKRBSRVNAME', compiled: 'postgres' }],
  ['gsslib', { env: 'PGGSSLIB' }],
  ['replication', {}],
  ['target_session_attrs', { env: 'PGTARGETSESSIONATTRS', compiled: 'any' }],
])

const URI_DESIGNATOR = 'postgresql://'
const SHORT_URI_DESIGNATOR = 'postgres://'

/** Debian's libpq looks for the server's socket here when no host is given (DEFAULT_PGSOCKET_DIR). */
export const DEFAULT_PGSOCKET_DIR = '/var/run/postgresql'

const fail = (msg: string): never => {
  throw new ConninfoError(`${msg}\n`)
}

/** libpq's isspace() in the C locale. */
const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v'

/**
 * PQconninfoParse: the options given in `conninfo` (no defaults), keyword → value.
 * Throws ConninfoError with libpq's message (ending in a newline) where libpq would refuse.
 */
export function parseConninfo(conninfo: string): Map<string, string> {
  if (conninfo.startsWith(URI_DESIGNATOR)) return parseUri(conninfo, URI_DESIGNATOR.length)
  if (conninfo.startsWith(SHORT_URI_DESIGNATOR)) return parseUri(conninfo, SHORT_URI_DESIGNATOR.length)
  return parseKeywordValue(conninfo)
}

function storeval(opts: Map<string, string>, keyword: string, value: string, ignoreMissing: boolean, uriDecode: boolean): boolean {
  if (keyword === 'requiressl') {
    keyword = 'sslmode'
    value = value[0] === '1' ? 'require' : 'prefer'
  }
  if (!LIBPQ_KEYWORDS.has(keyword)) {
    if (!ignoreMissing) fail(`invalid connection option "${keyword}"`)
    return false
  }
  opts.set(keyword, uriDecode ? uriDecodeValue(value) : value)
  return true
}

function parseKeywordValue(s: string): Map<string, string> {
  const opts = new Map<string, string>()
  let i = 0
  const n = s.length
  while (i < n) {
    if (isSpace(s[i])) {
      i++
      continue
    }
    const nameStart = i
    let nameEnd = -1
    while (i < n) {
      if (s[i] === '=') break
      if (isSpace(s[i])) {
        nameEnd = i
        while (i < n && isSpace(s[i])) i++
        break
      }
      i++
    }
    const name = s.slice(nameStart, nameEnd < 0 ? i : nameEnd)
    if (s[i] !== '=') fail(`missing "=" after "${name}" in connection info string`)
    i++
    while (i < n && isSpace(s[i])) i++
    let value = ''
    if (s[i] !== "'") {
      while (i < n) {
        if (isSpace(s[i])) {
          i++
          break
        }
        if (s[i] === '\\') {
          i++
          if (i < n) value += s[i++]
        } else value += s[i++]
      }
    } else {
      i++
      for (;;) {
        if (i >= n) fail('unterminated quoted string in connection info string')
        if (s[i] === '\\') {
          i++
          if (i < n) value += s[i++]
          continue
        }
        if (s[i] === "'") {
          i++
          break
        }
        value += s[i++]
      }
    }
    storeval(opts, name, value, false, false)
  }
  return opts
}

function parseUri(uri: string, prefixLength: number): Map<string, string> {
  const opts = new Map<string, string>()
  const buf = uri
  let p = prefixLength
  const start = prefixLength
  const at = (k: number): string => (k < buf.length ? buf[k] : '\0')

  // user[:password]@
  let q = p
  while (at(q) !== '\0' && at(q) !== '@' && at(q) !== '/') q++
  if (at(q) === '@') {
    let e = start
    while (at(e) !== ':' && at(e) !== '@') e++
    const user = buf.slice(start, e)
    if (user) storeval(opts, 'user', user, false, true)
    if (at(e) === ':') {
      const pwStart = e + 1
      while (at(e) !== '@') e++
      const password = buf.slice(pwStart, e)
      if (password) storeval(opts, 'password', password, false, true)
    }
    p = e + 1
  } else p = start

  // netloc[:port][,netloc[:port]...]
  let hostbuf = ''
  let portbuf = ''
  let prevchar = '\0'
  for (;;) {
    let host: string
    if (at(p) === '[') {
      const hs = ++p
      while (at(p) !== '\0' && at(p) !== ']') p++
      if (at(p) === '\0')
        fail(`end of string reached when looking for matching "]" in IPv6 host address in URI: "${uri}"`)
      if (p === hs) fail(`IPv6 host address may not be empty in URI: "${uri}"`)
      host = buf.slice(hs, p)
      p++
      const c = at(p)
      if (c !== '\0' && c !== ':' && c !== '/' && c !== '?' && c !== ',')
        fail(`unexpected character "${c}" at position ${p + 1} in URI (expected ":" or "/"): "${uri}"`)
    } else {
      const hs = p
      while (at(p) !== '\0' && at(p) !== ':' && at(p) !== '/' && at(p) !== '?' && at(p) !== ',') p++
      host = buf.slice(hs, p)
    }
    prevchar = at(p)
    hostbuf += host
    if (prevchar === ':') {
      const ps = ++p
      while (at(p) !== '\0' && at(p) !== '/' && at(p) !== '?' && at(p) !== ',') p++
      prevchar = at(p)
      portbuf += buf.slice(ps, p)
    }
    if (prevchar !== ',') break
    p++
    hostbuf += ','
    portbuf += ','
  }
  if (hostbuf) storeval(opts, 'host', hostbuf, false, true)
  if (portbuf) storeval(opts, 'port', portbuf, false, true)

  if (prevchar !== '\0' && prevchar !== '?') {
    const ds = ++p
    while (at(p) !== '\0' && at(p) !== '?') p++
    prevchar = at(p)
    const dbname = buf.slice(ds, p)
    if (dbname) storeval(opts, 'dbname', dbname, false, true)
  }
  if (prevchar !== '\0') parseUriParams(buf.slice(p + 1), opts)
  return opts
}

function parseUriParams(params: string, opts: Map<string, string>): void {
  let i = 0
  while (i < params.length) {
    const ks = i
    let eq = -1
    for (;;) {
      const c = i < params.length ? params[i] : '\0'
      if (c === '=') {
        if (eq >= 0) fail(`extra key/value separator "=" in URI query parameter: "${params.slice(ks, eq)}"`)
        eq = i++
      } else if (c === '&' || c === '\0') {
        if (eq < 0) fail(`missing key/value separator "=" in URI query parameter: "${params.slice(ks, i)}"`)
        break
      } else i++
    }
    let keyword = uriDecodeValue(params.slice(ks, eq))
    let value = uriDecodeValue(params.slice(eq + 1, i))
    if (i < params.length) i++ // past '&'
    if (keyword === 'ssl' && value === 'true') {
      keyword = 'sslmode'
      value = 'require'
    }
    if (!storeval(opts, keyword, value, true, false)) fail(`invalid URI query parameter: "${keyword}"`)
  }
}

/** conninfo_uri_decode: %xy escapes to bytes, the result read as UTF-8. */
function uriDecodeValue(str: string): string {
  if (!str.includes('%')) return str
  const bytes: number[] = []
  const raw = Buffer.from(str, 'utf8')
  for (let i = 0; i < raw.length; ) {
    if (raw[i] !== 0x25) {
      bytes.push(raw[i++])
      continue
    }
    const hi = hexDigit(raw[i + 1])
    const lo = hi < 0 ? -1 : hexDigit(raw[i + 2])
    if (hi < 0 || lo < 0) fail(`invalid percent-encoded token: "${str}"`)
    const c = (hi << 4) | lo
    if (c === 0) fail(`forbidden value %00 in percent-encoded value: "${str}"`)
    bytes.push(c)
    i += 3
  }
  return Buffer.from(bytes).toString('utf8')
}

function hexDigit(b: number | undefined): number {
  if (b === undefined) return -1
  if (b >= 0x30 && b <= 0x39) return b - 0x30
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10
  return -1
}

// ---------------------------------------------------------------------------------------------
// Defaults and validation (conninfo_add_defaults, connectOptions2)

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'

/** One place to try, in libpq's order: each host (and its port) of a comma-separated list. */
export interface ConnTarget {
  /** The host as given (a name, an address, or a socket directory); '' when only hostaddr was. */
  host: string
  /** A numeric address given with hostaddr: connect there and skip the name lookup. */
  hostaddr?: string
  port: number
  /** A Unix-domain socket directory (host starts with '/'). */
  socketDir?: string
}

export interface ResolvedConninfo {
  targets: ConnTarget[]
  user: string
  dbname: string
  password?: string
  options: string
  applicationName?: string
  fallbackApplicationName?: string
  /** Seconds; 0 = wait for as long as the OS does. Values 1 are raised to 2 as libpq does. */
  connectTimeout: number
  keepalives: boolean
  keepalivesIdle?: number
  sslmode: SslMode
  sslcert?: string
  sslkey?: string
  sslpassword?: string
  sslrootcert?: string
  sslsni: boolean
  sslMinProtocolVersion?: string
  sslMaxProtocolVersion?: string
  channelBinding: 'disable' | 'prefer' | 'require'
  replication?: string
  /**
   * A problem libpq only notices once it tries a server (an unparsable connect_timeout or keepalives
   * value): reported with the first address's "connection to server ... failed: " prefix.
   */
  attemptError?: string
  /** Every option after defaults, for diagnostics and for keywords not mapped above. */
  all: Map<string, string>
}

const SSL_MODES: readonly string[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']
const TARGET_SESSION_ATTRS: readonly string[] = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv
  /** The default socket directory when neither host nor hostaddr is given (libpq's compiled-in one). */
  defaultSocketDir?: string
  /** The OS user name libpq would fall back to. */
  osUser?: string
}

/**
 * The options of a connection string with libpq's defaults applied and validated, as the
 * connection attempts need them. Throws ConninfoError with libpq's text.
 */
export function resolveConninfo(conninfo: string, ro: ResolveOptions = {}): ResolvedConninfo {
  const given = parseConninfo(conninfo)
  const env = ro.env ?? process.env
  const all = new Map<string, string>()
  for (const [k, meta] of LIBPQ_KEYWORDS) {
    const v = given.get(k)
    if (v !== undefined) all.set(k, v)
    else if (meta.env && env[meta.env] !== undefined) all.set(k, env[meta.env]!)
    else if (k === 'sslmode' && env.PGREQUIRESSL?.[0] === '1') all.set(k, 'require')
    else if (meta.compiled !== undefined) all.set(k, meta.compiled)
  }
  if (all.get('service'))
    fail(`definition of service "${all.get('service')}" not found (ts-cnode does not read service files)`)
  const osUser = ro.osUser ?? safeUserName()
  const user = nonEmpty(all.get('user')) ?? osUser
  const dbname = nonEmpty(all.get('dbname')) ?? user

  // connectOptions2: hosts, hostaddrs and ports are parallel comma-separated lists.
  const hostList = splitList(all.get('host'))
  const addrList = splitList(all.get('hostaddr'))
  let hosts: string[]
  let addrs: (string | undefined)[]
  if (addrList.length > 0) {
    if (hostList.length > 0 && hostList.length !== addrList.length)
      fail(`could not match ${hostList.length} host names to ${addrList.length} hostaddr values`)
    addrs = addrList
    hosts = hostList.length > 0 ? hostList : addrList.map(() => '')
  } else {
    hosts = hostList.length > 0 ? hostList : ['']
    addrs = hosts.map(() => undefined)
  }
  const portList = splitList(all.get('port'))
  if (portList.length > 1 && portList.length !== hosts.length)
    fail(`could not match ${portList.length} port numbers to ${hosts.length} hosts`)
  const defaultSocketDir = ro.defaultSocketDir ?? DEFAULT_PGSOCKET_DIR
  const targets: ConnTarget[] = hosts.map((h, i) => {
    const portText = portList.length === 0 ? '' : portList.length === 1 ? portList[0] : portList[i]
    const port = portText === '' ? 5432 : parsePort(portText)
    const hostaddr = nonEmpty(addrs[i])
    if (hostaddr !== undefined) return { host: h, hostaddr, port }
    if (h === '') return { host: defaultSocketDir, port, socketDir: defaultSocketDir }
    if (h.startsWith('/')) return { host: h, port, socketDir: h }
    return { host: h, port }
  })

  const sslmode = all.get('sslmode')!
  if (!SSL_MODES.includes(sslmode)) fail(`invalid sslmode value: "${sslmode}"`)
  const gssencmode = all.get('gssencmode')!
  if (!['disable', 'prefer', 'require'].includes(gssencmode)) fail(`invalid gssencmode value: "${gssencmode}"`)
  const channelBinding = all.get('channel_binding')!
  if (!['disable', 'prefer', 'require'].includes(channelBinding))
    fail(`invalid channel_binding value: "${channelBinding}"`)
  const tsa = all.get('target_session_attrs')!
  if (!TARGET_SESSION_ATTRS.includes(tsa)) fail(`invalid target_session_attrs value: "${tsa}"`)
  if (tsa !== 'any') fail(`target_session_attrs "${tsa}" is not supported by ts-cnode (only "any")`)
  if (gssencmode === 'require') fail('gssencmode "require" is not supported by ts-cnode (no GSSAPI)')
  const enc = all.get('client_encoding')
  if (enc !== undefined && !/^(utf-?8|unicode|auto)$/i.test(enc))
    fail(`client_encoding "${enc}" is not supported by ts-cnode (the pg package speaks UTF8 only)`)

  let attemptError: string | undefined
  const intOption = (key: string): number | undefined => {
    const v = all.get(key)
    if (v === undefined || v === '') return undefined
    try {
      return parseIntParam(v, key)
    } catch (e) {
      attemptError ??= (e as Error).message
      return undefined
    }
  }
  let connectTimeout = intOption('connect_timeout') ?? 0
  if (connectTimeout > 0 && connectTimeout < 2) connectTimeout = 2
  if (connectTimeout < 0) connectTimeout = 0
  const keepalives = (intOption('keepalives') ?? 1) !== 0
  const keepalivesIdle = intOption('keepalives_idle')

  return {
    targets,
    user,
    dbname,
    password: all.get('password'),
    options: all.get('options') ?? '',
    applicationName: nonEmpty(all.get('application_name')),
    fallbackApplicationName: nonEmpty(all.get('fallback_application_name')),
    connectTimeout,
    keepalives,
    keepalivesIdle,
    sslmode: sslmode as SslMode,
    sslcert: nonEmpty(all.get('sslcert')),
    sslkey: nonEmpty(all.get('sslkey')),
    sslpassword: nonEmpty(all.get('sslpassword')),
    sslrootcert: nonEmpty(all.get('sslrootcert')),
    sslsni: all.get('sslsni') !== '0',
    sslMinProtocolVersion: nonEmpty(all.get('ssl_min_protocol_version')),
    sslMaxProtocolVersion: nonEmpty(all.get('ssl_max_protocol_version')),
    channelBinding: channelBinding as ResolvedConninfo['channelBinding'],
    replication: nonEmpty(all.get('replication')),
    attemptError,
    all,
  }
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s)

function splitList(s: string | undefined): string[] {
  if (s === undefined || s === '') return []
  return s.split(',')
}

/** parse_int_param: optional blanks, an integer, optional blanks, nothing else. */
function parseIntParam(value: string, context: string): number {
  const m = /^[ \t\n\r\f\v]*([+-]?\d+)[ \t\n\r\f\v]*$/.exec(value)
  const v = m ? Number(m[1]) : NaN
  if (!m || !Number.isSafeInteger(v) || v > 2147483647 || v < -2147483648)
    fail(`invalid integer value "${value}" for connection option "${context}"`)
  return v
}

function parsePort(text: string): number {
  const port = parseIntParam(text, 'port')
  if (port < 1 || port > 65535) fail(`invalid port number: "${text}"`)
  return port
}

function safeUserName(): string {
  try {
    return os.userInfo().username
  } catch {
    return process.env.USER ?? 'postgres'
  }
}
