// An embedded PostgreSQL for trying the node without a server: PGlite (Postgres compiled to WASM, no
// native build, no install scripts) behind pglite-socket, which speaks the Postgres wire protocol so the
// `pg` package — and therefore the pg_sync / pg_async drivers — connect to it like to a real server.
// Queries from several connections are serialized by PGlite; use a real server for load.
import type { Logger } from './logger.js'
import { defaultLogger } from './logger.js'

export interface EmbeddedDbOptions {
  host?: string // default 127.0.0.1
  port?: number // default 0: any free port
  /** Directory to keep the data in; in memory when absent. */
  dataDir?: string
  maxConnections?: number // default 100
  logger?: Logger
}

export interface EmbeddedDb {
  /** A libpq URL for it: postgres://postgres@HOST:PORT/postgres */
  readonly url: string
  readonly host: string
  readonly port: number
  stop(): Promise<void>
}

export class EmbeddedDbError extends Error {
  readonly code = 'ERR_EMBEDDED_DB'
}

export async function startEmbeddedDb(opts: EmbeddedDbOptions = {}): Promise<EmbeddedDb> {
  const log = opts.logger ?? defaultLogger
  const host = opts.host ?? '127.0.0.1'
  let PGlite: typeof import('@electric-sql/pglite').PGlite
  let PGLiteSocketServer: typeof import('@electric-sql/pglite-socket').PGLiteSocketServer
  try {
    ;({ PGlite } = await import('@electric-sql/pglite'))
    ;({ PGLiteSocketServer } = await import('@electric-sql/pglite-socket'))
  } catch (cause) {
    throw new EmbeddedDbError(
      'the embedded database needs @electric-sql/pglite and @electric-sql/pglite-socket (npm install them)',
      { cause },
    )
  }
  const db = await PGlite.create(opts.dataDir)
  const port = opts.port ?? 0
  const server = new PGLiteSocketServer({ db, host, port, maxConnections: opts.maxConnections ?? 100 })
  await server.start()
  // With port 0 the server's own address tells which port it got.
  const conn = server.getServerConn() // "host:port"
  const actualPort = Number(conn.slice(conn.lastIndexOf(':') + 1))
  const url = `postgres://postgres@${host}:${actualPort}/postgres`
  log.info('embedded database (PGlite) listening', { url, dataDir: opts.dataDir ?? 'memory' })
  let stopped = false
  return {
    url,
    host,
    port: actualPort,
    async stop() {
      if (stopped) return
      stopped = true
      await server.stop()
      await db.close()
    },
  }
}
