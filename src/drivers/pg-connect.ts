// PQconnectdb with the pg package: resolve a libpq connection string, then try each host and each of
// its addresses in libpq's order (fe-connect.c PQconnectPoll), collecting libpq's failure texts, until
// one connection is made. Nothing here blocks: name lookups, file reads and sockets are all async.
import { promises as dns } from 'node:dns'
import { promises as fs } from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import * as pg from 'pg'
import type { ConnectionOptions } from 'node:tls'
import { DistError } from '../errors.js'
import { resolveConninfo, type ConnTarget, type ResolvedConninfo } from './conninfo.js'
import { ConninfoError } from './errors.js'
import {
  connectFailure,
  formatServerError,
  lookupFailure,
  sessionFailure,
  type AttemptAddress,
} from './pgerror.js'

/** Every attempt failed; the message is what PQerrorMessage would say after PQconnectdb. */
export class PgConnectError extends DistError {
  override readonly code = 'ERR_PG_CONNECT'
}

export interface PgConnectOptions {
  /** Cancels the attempts (the owner died); the half-open client is closed. */
  signal?: AbortSignal
  env?: NodeJS.ProcessEnv
  /** Name lookup, replaceable for tests. */
  lookup?: (host: string) => Promise<{ address: string; family: number }[]>
}

// Servers that answered 'N' to an SSLRequest under sslmode=prefer: the next connection goes straight
// to plain text instead of paying for a refused TLS attempt again (libpq gets this for free because
// it continues on the same socket; pg cannot).
const noSslServers = new Set<string>()

/** The server's Unix socket in directory `dir`, as libpq names it. */
export const unixSocketPath = (dir: string, port: number): string => path.join(dir, `.s.PGSQL.${port}`)

/** Connects as PQconnectdb(conninfo) would; throws PgConnectError (libpq's text) or ConninfoError. */
export async function connectPg(conninfo: string, opts: PgConnectOptions = {}): Promise<pg.Client> {
  let info: ResolvedConninfo
  try {
    info = resolveConninfo(conninfo, { env: opts.env })
  } catch (e) {
    if (e instanceof ConninfoError) throw new PgConnectError(e.message, { cause: e })
    throw e
  }
  const lookup = opts.lookup ?? ((h: string) => dns.lookup(h, { all: true }))
  let messages = ''
  for (const target of info.targets) {
    let addresses: AttemptAddress[]
    try {
      addresses = await addressesOf(target, lookup)
    } catch (e) {
      messages += e instanceof PgConnectError ? e.message : String(e)
      continue
    }
    for (const a of addresses) {
      if (info.attemptError !== undefined) throw new PgConnectError(messages + sessionFailure(a, info.attemptError))
      opts.signal?.throwIfAborted()
      const r = await attempt(info, target, a, opts.signal)
      if (r instanceof pg.Client) return r
      messages += r
    }
  }
  throw new PgConnectError(messages)
}

async function addressesOf(
  t: ConnTarget,
  lookup: NonNullable<PgConnectOptions['lookup']>,
): Promise<AttemptAddress[]> {
  if (t.socketDir !== undefined)
    return [{ displayedHost: t.host, port: t.port, socketPath: unixSocketPath(t.socketDir, t.port) }]
  if (t.hostaddr !== undefined) {
    if (!net.isIP(t.hostaddr))
      throw new PgConnectError(`could not parse network address "${t.hostaddr}": Name or service not known\n`)
    return [{ displayedHost: t.host || t.hostaddr, address: t.hostaddr, port: t.port }]
  }
  if (net.isIP(t.host)) return [{ displayedHost: t.host, address: t.host, port: t.port }]
  try {
    const found = await lookup(t.host)
    return found.map((f) => ({ displayedHost: t.host, address: f.address, port: t.port }))
  } catch (e) {
    throw new PgConnectError(lookupFailure(t.host, e as NodeJS.ErrnoException))
  }
}

type SslChoice = false | ConnectionOptions

async function attempt(
  info: ResolvedConninfo,
  t: ConnTarget,
  a: AttemptAddress,
  signal: AbortSignal | undefined,
): Promise<pg.Client | string> {
  const key = `${a.address ?? a.socketPath}:${a.port}`
  let ssl: SslChoice
  try {
    ssl = a.socketPath !== undefined ? false : await sslFor(info, t, noSslServers.has(key))
  } catch (e) {
    return sessionFailure(a, e instanceof Error ? e.message : String(e))
  }
  const r = await tryOnce(info, a, ssl, signal)
  if (typeof r !== 'string' || r !== SSL_REFUSED) return r
  if (info.sslmode === 'prefer' || info.sslmode === 'allow') {
    noSslServers.add(key)
    return tryOnce(info, a, false, signal)
  }
  return sessionFailure(a, 'server does not support SSL, but SSL was required')
}

const SSL_REFUSED = '\0ssl-refused'

async function tryOnce(
  info: ResolvedConninfo,
  a: AttemptAddress,
  ssl: SslChoice,
  signal: AbortSignal | undefined,
): Promise<pg.Client | string> {
  const client = new pg.Client({
    host: a.socketPath !== undefined ? path.dirname(a.socketPath) : a.address,
    port: a.port,
    user: info.user,
    database: info.dbname,
    password: info.password,
    // The pg package decodes everything as UTF-8; ask the server to send exactly that.
    options: `-c client_encoding=UTF8${info.options ? ` ${info.options}` : ''}`,
    application_name: info.applicationName,
    fallback_application_name: info.fallbackApplicationName,
    connectionTimeoutMillis: info.connectTimeout * 1000,
    keepAlive: info.keepalives,
    keepAliveInitialDelayMillis: (info.keepalivesIdle ?? 0) * 1000,
    ssl: ssl === false ? false : ssl,
    enableChannelBinding: info.channelBinding === 'require',
    replication: info.replication,
  } as pg.ClientConfig)
  // A socket error with no query running must never become an uncaught 'error' event.
  client.on('error', () => {})
  // Aborted while connecting (the owner died, the caller gave up): the socket is destroyed, not ended
  // gracefully, since a server that has not answered may never close its side (the half-closed socket
  // stayed open for good).
  const onAbort = () => {
    ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
    void client.end().catch(() => {})
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    await client.connect()
    return client
  } catch (e) {
    void client.end().catch(() => {})
    return failureText(a, e, ssl !== false)
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}

function failureText(a: AttemptAddress, e: unknown, triedSsl: boolean): string {
  const err = e as NodeJS.ErrnoException & Record<string, string | undefined>
  if (err && typeof err === 'object' && typeof err.severity === 'string')
    return sessionFailure(
      a,
      formatServerError({
        severity: err.severity,
        message: err.message,
        detail: err.detail,
        hint: err.hint,
        where: err.where,
      }),
    )
  const message = err instanceof Error ? err.message : String(e)
  if (triedSsl && /does not support SSL/.test(message)) return SSL_REFUSED
  if (err?.syscall === 'connect' || (err?.code && /^E[A-Z]+$/.test(err.code) && err.code !== 'ERR_TLS_CERT_ALTNAME_INVALID'))
    return connectFailure(a, err)
  if (/password must be a (non-empty )?string|password authentication/i.test(message))
    return sessionFailure(a, 'fe_sendauth: no password supplied')
  if (/Connection terminated unexpectedly/.test(message))
    return sessionFailure(a, 'server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.')
  return sessionFailure(a, message)
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}

/** pg's `ssl` option for an sslmode (libpq's files default to ~/.postgresql/). */
async function sslFor(info: ResolvedConninfo, t: ConnTarget, knownPlain: boolean): Promise<SslChoice> {
  const mode = info.sslmode
  if (mode === 'disable' || mode === 'allow') return false
  if (mode === 'prefer' && knownPlain) return false
  const home = path.join(os.homedir(), '.postgresql')
  const certFile = info.sslcert ?? path.join(home, 'postgresql.crt')
  const keyFile = info.sslkey ?? path.join(home, 'postgresql.key')
  const rootFile = info.sslrootcert ?? path.join(home, 'root.crt')
  const opts: ConnectionOptions = {}
  const cert = await readIfExists(certFile)
  if (cert) {
    opts.cert = cert
    opts.key = await readIfExists(keyFile)
    if (info.sslpassword) opts.passphrase = info.sslpassword
  }
  if (info.sslsni && t.host && !net.isIP(t.host) && !t.host.startsWith('/')) opts.servername = t.host
  if (info.sslMinProtocolVersion) opts.minVersion = info.sslMinProtocolVersion as ConnectionOptions['minVersion']
  if (info.sslMaxProtocolVersion) opts.maxVersion = info.sslMaxProtocolVersion as ConnectionOptions['maxVersion']
  const systemRoots = info.sslrootcert === 'system'
  const ca = systemRoots ? undefined : await readIfExists(rootFile)
  const verify = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && ca !== undefined)
  if (!verify) return { ...opts, rejectUnauthorized: false }
  if (!systemRoots && ca === undefined)
    throw new Error(
      `root certificate file "${rootFile}" does not exist\n` +
        'Either provide the file, use the system\'s trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.',
    )
  if (ca) opts.ca = ca
  opts.rejectUnauthorized = true
  if (mode !== 'verify-full') opts.checkServerIdentity = () => undefined
  else if (t.host && !t.host.startsWith('/')) opts.servername = t.host
  return opts
}
