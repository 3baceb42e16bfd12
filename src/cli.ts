#!/usr/bin/env node
// The main job: a ts-cnode node with the seed drivers. Flags mirror erl's where they overlap.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Node } from './node.js'
import { isLongNodeName, nodeHost } from './dist/handshake.js'
import { startDrivers, type Drivers } from './drivers/driver.js'
import { connectPg } from './drivers/pg-connect.js'
import { sessionCancels } from './drivers/session.js'
import { startEmbeddedDb, type EmbeddedDb } from './embedded-db.js'
import { consoleLogger, type LogLevel, type Logger } from './logger.js'

export const USAGE = `Usage: ts-cnode [options]

Erlang-style flags:
  -sname NAME          short node name (default: tsnode), host part from this machine
  -name NAME           long node name (NAME or NAME@HOST)
  -setcookie COOKIE    the cookie (default: ~/.erlang.cookie, as erl reads it)
  -hidden              publish as a hidden node (the default for a C-node)
  -visible             publish as a normal node (joins the peers' nodes() list)

Options:
  --port N             distribution listen port (default: any free port)
  --listen-host H      address to listen on (default: 0.0.0.0)
  --epmd-port N        EPMD port (default: ERL_EPMD_PORT or 4369); with no EPMD there, an embedded one starts
  --epmd-host H        EPMD host (default: 127.0.0.1)
  --net-ticktime S     seconds (default: 60), as erl's -kernel net_ticktime
  --tls-cert FILE      distribution over TLS, as erl -proto_dist inet_tls: this node's certificate (PEM)
  --tls-key FILE         its private key (PEM)
  --tls-ca FILE          the CA certificates peers must chain to (PEM); peers are verified
  --tls-require-client-cert
                         refuse incoming peers without a certificate (fail_if_no_peer_cert)
  --drivers N          how many some_driver_NN processes (default: 16)
  --db URL|embedded|none
                       the database the printed example uses: a libpq URL of your server, "embedded" to
                       start an in-process PGlite (the default), or "none"
  --db-dir DIR         keep the embedded database's data in DIR (default: in memory)
  --log-level L        debug | info | warn | error | silent (default: warn; info shows connections)
  --log-format F       text | json (default: text)
  -h, --help           this text
`

export interface CliOptions {
  name: string
  longNames: boolean
  cookie?: string
  hidden: boolean
  port?: number
  listenHost?: string
  epmdPort?: number
  epmdHost?: string
  netTicktime?: number
  tls?: { cert?: string; key?: string; ca?: string; requireClientCert?: boolean }
  drivers: number
  db: string
  dbDir?: string
  logLevel: LogLevel
  logFormat: 'text' | 'json'
  help: boolean
}

export class UsageError extends Error {
  readonly code = 'ERR_USAGE'
}

const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  const o: CliOptions = { name: 'tsnode', longNames: false, hidden: true, drivers: 16, db: 'embedded', logLevel: 'warn', logFormat: 'text', help: false }
  const epmdEnv = env.ERL_EPMD_PORT
  if (epmdEnv) o.epmdPort = int('ERL_EPMD_PORT', epmdEnv, 1, 65535)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new UsageError(`${a} needs a value`)
      return v
    }
    switch (a) {
      case '-sname': o.name = value(); o.longNames = false; break
      case '-name': o.name = value(); o.longNames = true; break
      case '-setcookie': o.cookie = value(); break
      case '-hidden': o.hidden = true; break
      case '-visible': o.hidden = false; break
      case '--port': o.port = int(a, value(), 0, 65535); break
      case '--listen-host': o.listenHost = value(); break
      case '--epmd-port': o.epmdPort = int(a, value(), 1, 65535); break
      case '--epmd-host': o.epmdHost = value(); break
      case '--net-ticktime': o.netTicktime = int(a, value(), 1, 3600); break
      case '--tls-cert': (o.tls ??= {}).cert = value(); break
      case '--tls-key': (o.tls ??= {}).key = value(); break
      case '--tls-ca': (o.tls ??= {}).ca = value(); break
      case '--tls-require-client-cert': (o.tls ??= {}).requireClientCert = true; break
      case '--drivers': o.drivers = int(a, value(), 1, 99); break
      case '--db': o.db = value(); break
      case '--db-dir': o.dbDir = value(); break
      case '--log-level': {
        const l = value() as LogLevel
        if (!LEVELS.includes(l)) throw new UsageError(`--log-level takes one of ${LEVELS.join(', ')}`)
        o.logLevel = l
        break
      }
      case '--log-format': {
        const f = value()
        if (f !== 'text' && f !== 'json') throw new UsageError('--log-format takes text or json')
        o.logFormat = f
        break
      }
      case '-h': case '--help': o.help = true; break
      default: throw new UsageError(`unknown option ${a} (see --help)`)
    }
  }
  if (!/^[A-Za-z0-9_-]+(@[^@\s]+)?$/.test(o.name)) throw new UsageError(`bad node name ${o.name}`)
  // As erl -sname refuses one ("Can't set short node name!"): a host with dots makes a long name.
  if (!o.longNames && isLongNodeName(o.name))
    throw new UsageError(`-sname ${o.name}: a short name's host has no dots (an FQDN or an address is a long name: use -name)`)
  if (o.dbDir !== undefined && o.db !== 'embedded') throw new UsageError('--db-dir is for the embedded database (--db embedded) only')
  if (o.tls && (!o.tls.cert || !o.tls.key || !o.tls.ca)) throw new UsageError('TLS needs all of --tls-cert, --tls-key and --tls-ca')
  return o
}

function int(what: string, s: string, min: number, max: number): number {
  // Digits only: Number() would take '' as 0, '1e3' as 1000 and '0x10' as 16.
  const n = /^\d{1,10}$/.test(s) ? Number(s) : NaN
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${what} takes a whole number from ${min} to ${max}, got ${s}`)
  return n
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Compiles erlang/src into erlang/ebin when a .beam is missing or older than its source; returns ebin. */
export function ensureErlangModules(log: Logger, root = repoRoot): string | undefined {
  const src = path.join(root, 'erlang', 'src')
  const ebin = path.join(root, 'erlang', 'ebin')
  if (!existsSync(src)) return undefined
  const stale = readdirSync(src)
    .filter((f) => f.endsWith('.erl'))
    .filter((f) => {
      const beam = path.join(ebin, f.replace(/\.erl$/, '.beam'))
      return !existsSync(beam) || statSync(beam).mtimeMs < statSync(path.join(src, f)).mtimeMs
    })
  if (stale.length > 0) {
    try {
      mkdirSync(ebin, { recursive: true })
      execFileSync('erlc', ['-o', ebin, ...stale.map((f) => path.join(src, f))], { stdio: 'pipe' })
      log.info('compiled the Erlang modules', { ebin, modules: stale.length })
    } catch (e) {
      log.warn(`could not compile erlang/src with erlc (${(e as Error).message.split('\n')[0]}): compile them yourself`)
      return existsSync(ebin) ? ebin : undefined
    }
  }
  return ebin
}

/** What to type in erl, printed on start. */
export function instructions(node: Node, opts: CliOptions, ebin: string | undefined, dbUrl: string | undefined): string {
  const full = node.name.name
  const host = nodeHost(full)
  const epmdPort = opts.epmdPort ?? 4369
  const envPrefix = epmdPort !== 4369 ? `ERL_EPMD_PORT=${epmdPort} ` : ''
  const erlName = opts.longNames ? `-name demo@${host}` : '-sname demo'
  // Secrets are not printed (the banner ends up in logs, `docker compose logs`): the cookie and a password
  // given on the command line appear as placeholders.
  const cookie = opts.cookie !== undefined ? ` -setcookie "$COOKIE"` : ''
  const pa = ebin ? ` -pa ${ebin}` : ''
  // ./ : erl reads a bare file name through erl_prim_loader, which does not find it (bad_ssl_dist_optfile).
  const tls = opts.tls ? ' -proto_dist inet_tls -ssl_dist_optfile ./ssl_dist.conf' : ''
  const lines = [
    `ts-cnode: node ${full} is up (${opts.hidden ? 'hidden' : 'visible'}, ${node.runtime.registered().length} registered processes).`,
    '',
    'In another terminal:',
    `  ${envPrefix}erl ${erlName}${cookie}${tls}${pa}`,
    `  1> net_adm:ping('${full}').`,
    '  pong',
  ]
  if (dbUrl) {
    lines.push(
      `  2> {ok, P} = pg_sync:connect("${withoutPassword(dbUrl)}").`,
      `  3> pg_sync:select(P, "select 6 * 7 as answer").`,
      '  {ok,[["answer"],["42"]]}',
      '  4> pg_sync:disconnect(P).',
    )
  }
  lines.push(`  ${dbUrl ? 5 : 2}> next_perm:next_perm([1,2,3]).`, '  [1,3,2]')
  if (opts.cookie !== undefined) lines.push('', '($COOKIE: the cookie given to -setcookie.)')
  if (opts.tls)
    lines.push(
      '',
      '(This node speaks TLS only: ssl_dist.conf gives erl a certificate the --tls-ca CA signed and that CA, e.g.',
      `   [{server, [{certfile, "erl.pem"}, {keyfile, "erl.key"}, {cacertfile, "${opts.tls.ca}"}, {verify, verify_peer}]},`,
      `    {client, [{certfile, "erl.pem"}, {keyfile, "erl.key"}, {cacertfile, "${opts.tls.ca}"}, {verify, verify_peer}]}].)`,
    )
  if (withoutPassword(dbUrl ?? '') !== (dbUrl ?? '')) lines.push('', '(PASSWORD: the password of the --db URL.)')
  if (opts.name !== 'tsnode' || opts.longNames) {
    lines.push('', `(The Erlang modules find this node through: export TS_CNODE_NODE=${full})`)
  }
  lines.push('', 'Ctrl-C stops the node.')
  return lines.join('\n')
}

/** A libpq connection string with its passwords replaced by PASSWORD: a URL's user:password@ and its
 *  ?password= parameter, and a key/value string's password=... (quoted or not). */
export function withoutPassword(conninfo: string): string {
  return conninfo
    .replace(/^(postgres(?:ql)?:\/\/[^:@/?#]*:)[^@/?#]*@/, '$1PASSWORD@')
    .replace(/([?&]password=)[^&#]*/gi, '$1PASSWORD')
    .replace(/(^|\s)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']\S*)/g, '$1$2PASSWORD')
}

export interface Running {
  node: Node
  drivers: Drivers
  db?: EmbeddedDb
  dbUrl?: string
  stop(): Promise<void>
}

/**
 * Tries the --db database once, in the background, and says what it found: a URL the node only prints would
 * otherwise fail at the first pg_sync:connect from erl, long after the node looked fine.
 */
export async function checkDb(url: string, log: Logger): Promise<boolean> {
  const shown = withoutPassword(url)
  try {
    const client = await connectPg(url, { signal: AbortSignal.timeout(15_000) })
    await client.end().catch(() => {})
    log.info(`the --db database answers: ${shown}`)
    return true
  } catch (e) {
    const why = e instanceof Error ? e.message.trim().replace(/\s*\n\s*/g, '; ') : String(e)
    log.warn(`the --db database does not answer now (${why}): pg_sync:connect("${shown}") fails until it does`)
    return false
  }
}

/** Starts everything the CLI starts; used by main() and by tests. */
export async function run(opts: CliOptions, log: Logger): Promise<Running> {
  const node = new Node({
    name: opts.name,
    longNames: opts.longNames,
    cookie: opts.cookie,
    hidden: opts.hidden,
    listenPort: opts.port,
    listenHost: opts.listenHost,
    epmdPort: opts.epmdPort,
    epmdHost: opts.epmdHost,
    netTicktime: opts.netTicktime,
    tls: opts.tls && {
      cert: readFileSync(opts.tls.cert!),
      key: readFileSync(opts.tls.key!),
      ca: readFileSync(opts.tls.ca!),
      requireClientCert: opts.tls.requireClientCert,
    },
    logger: log,
  })
  let db: EmbeddedDb | undefined
  let dbUrl: string | undefined
  if (opts.db === 'embedded') {
    db = await startEmbeddedDb({ dataDir: opts.dbDir, logger: log })
    dbUrl = db.url
  } else if (opts.db !== 'none') {
    dbUrl = opts.db
    void checkDb(dbUrl, log)
  }
  try {
    await node.start()
  } catch (e) {
    await db?.stop()
    throw e
  }
  const drivers = await startDrivers(node, { count: opts.drivers })
  let stopping: Promise<void> | undefined
  return {
    node,
    drivers,
    db,
    dbUrl,
    stop() {
      stopping ??= (async () => {
        await drivers.stop()
        await node.stop() // ends every process (sessions close their Postgres connections), unregisters, tells peers
        await sessionCancels() // the queries those sessions were running, cancelled before this process exits
        await db?.stop()
      })()
      return stopping
    },
  }
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let opts: CliOptions
  try {
    opts = parseArgs(argv)
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (opts.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const log = consoleLogger(opts.logLevel, 'ts-cnode', opts.logFormat)
  // Signals are handled from the start: as PID 1 in a container, a signal with no handler is dropped, so one
  // sent while the node is still starting would be lost (docker stop then waits and kills). A second signal
  // ends the process at once.
  let signalled: NodeJS.Signals | undefined
  let onStop: (() => void) | undefined
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled !== undefined) {
      process.stderr.write(`ts-cnode: ${sig} again: exiting without a clean shutdown\n`)
      process.exit(1)
    }
    signalled = sig
    log.info('shutting down', { signal: sig })
    onStop?.()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const ebin = ensureErlangModules(log)
  let running: Running
  try {
    running = await run(opts, log)
  } catch (e) {
    process.stderr.write(`ts-cnode: could not start: ${(e as Error).message}\n`)
    return signalled !== undefined ? 0 : 1
  }
  if (signalled === undefined) process.stdout.write(instructions(running.node, opts, ebin, running.dbUrl) + '\n')
  await new Promise<void>((resolve) => {
    onStop = () =>
      running.stop().then(resolve, (e) => {
        log.error(`shutdown failed: ${(e as Error).message}`)
        resolve()
      })
    if (signalled !== undefined) onStop()
  })
  process.stdout.write(`ts-cnode: node ${running.node.name.name} stopped.\n`)
  return 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => process.exit(code))
}

