// libpq's error texts, rebuilt from what the pg package reports, so {error, Msg} reads as the seed's
// PQerrorMessage(conn) did. Query errors follow pqBuildErrorMessage3 (fe-protocol3.c) with libpq's
// defaults (PQERRORS_DEFAULT, PQSHOW_CONTEXT_ERRORS), including reportErrorPosition's "LINE n:" cursor.
// Connection failures follow fe-connect.c (emitHostIdentityInfo, connectFailureMessage).

/** The fields of a server ErrorResponse, as pg's DatabaseError carries them. */
export interface ServerErrorFields {
  severity?: string
  message: string
  detail?: string
  hint?: string
  position?: string
  internalPosition?: string
  internalQuery?: string
  where?: string
}

/**
 * The text PQerrorMessage gives for a server error: "ERROR:  msg\n" then the cursor display, DETAIL,
 * HINT, QUERY and CONTEXT lines. `query` is the statement libpq would remember (conn->last_query).
 */
export function formatServerError(e: ServerErrorFields, query?: string): string {
  let msg = ''
  if (e.severity) msg += `${e.severity}:  `
  msg += e.message
  let querytext: string | undefined
  let querypos = 0
  if (e.position !== undefined) {
    if (query !== undefined) {
      querytext = query
      querypos = atoi(e.position)
    } else msg += ` at character ${e.position}`
  } else if (e.internalPosition !== undefined) {
    querytext = e.internalQuery
    if (querytext !== undefined) querypos = atoi(e.internalPosition)
    else msg += ` at character ${e.internalPosition}`
  }
  msg += '\n'
  if (querytext !== undefined && querypos > 0) msg += reportErrorPosition(querytext, querypos)
  if (e.detail !== undefined) msg += `DETAIL:  ${e.detail}\n`
  if (e.hint !== undefined) msg += `HINT:  ${e.hint}\n`
  if (querytext !== undefined && e.internalQuery !== undefined) msg += `QUERY:  ${e.internalQuery}\n`
  if (e.where !== undefined) msg += `CONTEXT:  ${e.where}\n`
  return msg
}

function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s)
  return m ? parseInt(m[1], 10) : 0
}

const DISPLAY_SIZE = 60 // screen width limit, in screen columns
const MIN_RIGHT_CUT = 10 // try to keep this far away from EOL

/**
 * reportErrorPosition: the "LINE n: ..." line and the "^" cursor under character `loc` (1-based, in
 * characters) of `query`, truncated to 60 screen columns around the cursor as libpq does.
 */
export function reportErrorPosition(query: string, loc: number): string {
  loc--
  if (loc < 0) return ''
  const chars = Array.from(query).map((c) => (c === '\t' ? ' ' : c))
  const scridx: number[] = []
  let scroffset = 0
  let locLine = 1
  let ibeg = 0
  let iend = -1
  let cno = 0
  for (; cno < chars.length; cno++) {
    const ch = chars[cno]
    scridx[cno] = scroffset
    if (ch === '\r' || ch === '\n') {
      if (cno < loc) {
        if (ch === '\r' || cno === 0 || chars[cno - 1] !== '\r') locLine++
        ibeg = cno + 1
      } else {
        iend = cno
        break
      }
    }
    scroffset += displayWidth(ch.codePointAt(0)!)
  }
  if (iend < 0) {
    iend = cno
    scridx[iend] = scroffset
  }
  if (loc > cno) return ''
  let begTrunc = false
  let endTrunc = false
  if (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE) {
    if (scridx[ibeg] + DISPLAY_SIZE >= scridx[loc] + MIN_RIGHT_CUT) {
      while (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE) iend--
      endTrunc = true
    } else {
      while (scridx[loc] + MIN_RIGHT_CUT < scridx[iend]) {
        iend--
        endTrunc = true
      }
      while (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE) {
        ibeg++
        begTrunc = true
      }
    }
  }
  const prefix = `LINE ${locLine}: ` + (begTrunc ? '...' : '')
  let out = prefix + chars.slice(ibeg, iend).join('') + (endTrunc ? '...' : '') + '\n'
  const cursor = prefix.length + scridx[loc] - scridx[ibeg]
  out += ' '.repeat(cursor) + '^\n'
  return out
}

/**
 * pg_encoding_dsplen for UTF-8 (ucs_wcwidth), where libpq counts control and combining characters as
 * 1 column: East Asian wide and fullwidth characters take 2, everything else 1.
 */
function displayWidth(ucs: number): number {
  if (ucs < 0x1100) return 1
  const wide =
    ucs <= 0x115f ||
    (ucs >= 0x2e80 && ucs <= 0xa4cf && (ucs & ~0x0011) !== 0x300a && ucs !== 0x303f) ||
    (ucs >= 0xac00 && ucs <= 0xd7a3) ||
    (ucs >= 0xf900 && ucs <= 0xfaff) ||
    (ucs >= 0xfe30 && ucs <= 0xfe6f) ||
    (ucs >= 0xff00 && ucs <= 0xff5f) ||
    (ucs >= 0xffe0 && ucs <= 0xffe6) ||
    (ucs >= 0x1f300 && ucs <= 0x1f64f) ||
    (ucs >= 0x1f900 && ucs <= 0x1f9ff) ||
    (ucs >= 0x20000 && ucs <= 0x2fffd) ||
    (ucs >= 0x30000 && ucs <= 0x3fffd)
  return wide ? 2 : 1
}

// ---------------------------------------------------------------------------------------------
// Connection failures

/** Where one connection attempt went, for libpq's "connection to server ... failed: " prefix. */
export interface AttemptAddress {
  /** The host as the user gave it (or the hostaddr when no host was given). */
  displayedHost: string
  /** The numeric address connected to; undefined for a Unix-domain socket. */
  address?: string
  port: number
  /** The socket file for a Unix-domain socket. */
  socketPath?: string
}

/** emitHostIdentityInfo. */
export function hostIdentity(a: AttemptAddress): string {
  if (a.socketPath !== undefined) return `connection to server on socket "${a.socketPath}" failed: `
  if (a.address === undefined || a.address === a.displayedHost)
    return `connection to server at "${a.displayedHost}", port ${a.port} failed: `
  return `connection to server at "${a.displayedHost}" (${a.address}), port ${a.port} failed: `
}

/** strerror() texts (glibc) for the errno codes Node reports on a failed connect. */
const STRERROR: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ENOENT: 'No such file or directory',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ECONNRESET: 'Connection reset by peer',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENOTDIR: 'Not a directory',
  EPIPE: 'Broken pipe',
  EINVAL: 'Invalid argument',
  EAFNOSUPPORT: 'Address family not supported by protocol',
}

/** gai_strerror() texts (glibc) for the getaddrinfo codes Node reports. */
const GAI_STRERROR: Record<string, string> = {
  ENOTFOUND: 'Name or service not known',
  EAI_NONAME: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
  EAI_FAIL: 'Non-recoverable failure in name resolution',
  EAI_NODATA: 'No address associated with hostname',
  EAI_FAMILY: 'ai_family not supported',
  EAI_MEMORY: 'Memory allocation failure',
  EAI_SERVICE: 'Servname not supported for ai_socktype',
}

export function strerror(code: string | undefined, fallback: string): string {
  return (code && STRERROR[code]) || fallback
}

/** "could not translate host name ..." for a failed name lookup. */
export function lookupFailure(host: string, err: NodeJS.ErrnoException): string {
  const text = (err.code && GAI_STRERROR[err.code]) || err.message
  return `could not translate host name "${host}" to address: ${text}\n`
}

/** connectFailureMessage: a connect() that failed, with libpq's hint line. */
export function connectFailure(a: AttemptAddress, err: NodeJS.ErrnoException): string {
  const hint =
    a.socketPath !== undefined
      ? '\tIs the server running locally and accepting connections on that socket?\n'
      : '\tIs the server running on that host and accepting TCP/IP connections?\n'
  return `${hostIdentity(a)}${strerror(err.code, err.message)}\n${hint}`
}

/** A failure after the socket connected: the server's FATAL error, TLS, authentication. */
export function sessionFailure(a: AttemptAddress, text: string): string {
  return hostIdentity(a) + (text.endsWith('\n') ? text : `${text}\n`)
}

/** What libpq says when the server goes away in the middle of a query (pqReadData). */
export const SERVER_CLOSED_CONNECTION =
  'server closed the connection unexpectedly\n' +
  '\tThis probably means the server terminated abnormally\n' +
  '\tbefore or while processing the request.\n'

/** PQsendQueryStart on a connection that is not open. */
export const NO_CONNECTION = 'no connection to the server\n'
