// A pg session: the port of the seed's pg_sync / pg_async drivers. One process with its own pg Client
// (the port-level lock), linked to its owner so the connection closes when the owner dies. Requests
// queue in pg's own query queue; replies go out as each result completes, so the process never waits
// on Postgres and the event loop is never blocked.
//
// Requests (gen_server:call, answered with the seed's terms):
//   {select, Query} | {select, Query, Params} | disconnect | info
// The same commands as messages, for pg_async; the reply is the message {SessionPid, {data, Reply}} sent
// to ReplyTo (a pid, or an alias that stops taking messages once the caller is done waiting):
//   {'$ts_cnode_pg', ReplyTo, Command}
// A caller that gives up on a select (query_timeout) says so, naming the alias its reply would have gone to
// (the call's alias for pg_sync, ReplyTo for pg_async):
//   {'$ts_cnode_pg_cancel', Alias}
// The select is then cancelled: not run at all if it has not started, else with a CancelRequest to the server,
// sent only while that select is the one executing.
import type * as pg from 'pg'
import { ImproperList, Pid, Ref, Tuple, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { spawnGenServer, type From, type GenServerCallbacks, type GenServerContext, type Process, type Runtime } from '../runtime/index.js'
import { ERROR, EXIT, NORMAL, OK } from '../runtime/atoms.js'
import { samePid } from '../runtime/ids.js'
import { BadRequestError, InvalidEncodingError } from './errors.js'
import { PgConnectError, connectPg } from './pg-connect.js'
import { NO_CONNECTION, SERVER_CLOSED_CONNECTION, formatServerError, type ServerErrorFields } from './pgerror.js'
import { sendCancelRequest } from './pg-cancel.js'
import { QUERY_CANCELED, TermQuery, paramValues, termText, textTerm, type CancelGate, type ResultMode } from './pg-result.js'
import { sessionReplies } from './reply-batch.js'

const DATA = atom('data')
const SELECT = atom('select')
const DISCONNECT = atom('disconnect')
const INFO = atom('info')
/** The tag of a pg_async command message (pg_async.erl's ?COMMAND). */
export const PG_ASYNC_COMMAND = atom('$ts_cnode_pg')
/** The tag of a caller's "I gave up on this select" (pg_query.erl's cancel/2). */
export const PG_CANCEL = atom('$ts_cnode_pg_cancel')
/** How long a CancelRequest may take before the session's queries go on without waiting for it. */
const CANCEL_TIMEOUT_MS = 10_000
/** The same when the session ends (its node may be stopping). */
const END_CANCEL_TIMEOUT_MS = 3_000

export interface SessionLimits {
  /** A query longer than this many bytes is refused with {error, Msg} (default 64 MiB). */
  maxQueryBytes: number
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxQueryBytes: 64 * 1024 * 1024 }

export interface SessionArgs {
  owner: Pid
  conninfo: string
  mode: ResultMode
  /** pg_sync: answer this call when the connection is made or failed; pg_async: send {Self, {data, ...}}. */
  connectReply: { kind: 'sync'; from: From } | { kind: 'async' }
  limits: SessionLimits
  env?: NodeJS.ProcessEnv
}

type Status = 'connecting' | 'open' | 'failed'

interface Waiting {
  command: Term
  answer: (reply: Term) => void
  /** pg_async's command: the first result of several statements, as the seed's PQgetResult gives. */
  first: boolean
  /** The alias the reply goes to, by which the caller can cancel the command. */
  tag: Ref | undefined
}

interface SessionState {
  args: SessionArgs
  status: Status
  client?: pg.Client
  /** Requests that arrived while connecting, answered in order once the connection is settled. */
  waiting: Waiting[]
  queries: number
  inflight: number
  /**
   * The connection died while no query was running (the server terminated it): libpq reports that to
   * the next query, then "no connection to the server" to the ones after.
   */
  lostText?: string
  /** The queries not yet answered whose caller can give up on them, with the alias that names them. */
  cancellable: Map<TermQuery, Ref>
  /** Holds back the next query while a CancelRequest is on its way. */
  gate: CancelGate
}

/** Spawns a session process for `args.owner`. It links to the owner before doing anything else. */
export function spawnSession(rt: Runtime, args: SessionArgs): Process {
  // Trapping exits so that the owner's end closes the session whatever its reason, `normal` included,
  // as an Erlang port closes when its connected process terminates.
  return spawnGenServer<SessionState, SessionArgs>(rt, sessionServer, { args, trapExit: true })
}


const CONNECT_DONE = atom('$ts_cnode_pg_connected')

const sessionServer: GenServerCallbacks<SessionState, SessionArgs> = {
  init(args, ctx) {
    const { self } = ctx
    self.link(args.owner)
    const state: SessionState = {
      args,
      status: 'connecting',
      waiting: [],
      queries: 0,
      inflight: 0,
      cancellable: new Map(),
      gate: { pending: undefined },
    }
    // The owner's death aborts self.signal, which ends a connection still being made.
    connectPg(args.conninfo, { signal: self.signal, env: args.env }).then(
      (client) => {
        if (!self.alive) {
          void client.end().catch(() => {})
          return
        }
        state.client = client
        client.on('error', (e: unknown) => {
          // pg reports the server's FATAL first, then the closed socket: the first says more.
          if (state.client !== client || state.inflight > 0 || state.status !== 'open') return
          state.lostText = connectionLostText(e)
          state.status = 'failed'
        })
        self.send(self.pid, tuple(CONNECT_DONE, OK))
      },
      (e: unknown) => {
        if (!self.alive) return
        const text = e instanceof PgConnectError ? e.message : `${e instanceof Error ? e.message : String(e)}\n`
        self.send(self.pid, tuple(CONNECT_DONE, tuple(ERROR, errorText(text, state))))
      },
    )
    return state
  },

  handleCall(request, from, state, ctx) {
    // Replies leave with the batch of this loop iteration (reply-batch.ts).
    const answer = (reply: Term) => sessionReplies.reply(ctx, from, reply)
    if (request === DISCONNECT) {
      closeClient(state)
      return { stop: NORMAL, reply: OK }
    }
    const tag = replyAlias(from)
    if (state.status === 'connecting') {
      state.waiting.push({ command: request, answer, first: false, tag })
      return { noreply: true }
    }
    run(request, state, answer, false, tag)
    return { noreply: true }
  },

  handleInfo(msg, state, ctx) {
    if (msg instanceof Tuple && msg.length === 2 && msg.get(0) === CONNECT_DONE) return connected(msg.get(1), state, ctx)
    if (msg instanceof Tuple && msg.length === 3 && msg.get(0) === EXIT && msg.get(1) instanceof Pid && samePid(msg.get(1) as Pid, state.args.owner)) {
      closeClient(state)
      return { stop: NORMAL }
    }
    if (msg instanceof Tuple && msg.length === 3 && msg.get(0) === PG_ASYNC_COMMAND && (msg.get(1) instanceof Pid || msg.get(1) instanceof Ref)) {
      // ReplyTo: pg_async sends an alias of the command, so a reply that comes after the caller gave up is
      // dropped instead of answering its next command; a pid (the seed's own receive) works too.
      const to = msg.get(1) as Pid | Ref
      const self = ctx.self
      const answer = (reply: Term) => sessionReplies.send(self, to, tuple(self.pid, tuple(DATA, reply)))
      const command = msg.get(2)
      if (command === DISCONNECT) {
        closeClient(state)
        answer(OK)
        return { stop: NORMAL }
      }
      const tag = to instanceof Ref ? to : undefined
      if (state.status === 'connecting') state.waiting.push({ command, answer, first: true, tag })
      else run(command, state, answer, true, tag)
      return undefined
    }
    if (msg instanceof Tuple && msg.length === 2 && msg.get(0) === PG_CANCEL && msg.get(1) instanceof Ref) {
      cancel(msg.get(1) as Ref, state)
      return undefined
    }
    return undefined
  },

  terminate(_reason, state) {
    closeClient(state)
    // Replies still held go out while this process is alive (pg_async's are sent from it).
    sessionReplies.flush()
  },
}

function connected(result: Term, state: SessionState, ctx: GenServerContext) {
  const ok = result === OK
  state.status = ok ? 'open' : 'failed'
  const reply = ok ? tuple(OK, ctx.self.pid) : result
  const cr = state.args.connectReply
  if (cr.kind === 'sync') ctx.reply(cr.from, reply)
  else ctx.self.send(state.args.owner, tuple(ctx.self.pid, tuple(DATA, ok ? OK : result)))
  for (const w of state.waiting.splice(0)) {
    if (ok) run(w.command, state, w.answer, w.first, w.tag)
    else w.answer(tuple(ERROR, errorText(NO_CONNECTION, state)))
  }
  // A session whose connection failed has nothing to offer: it ends, unlinked first. The seed leaves its
  // port open after a failed connect, so the owner never hears of it: no {'EXIT', Session, normal} for an
  // owner that traps exits (a gen_server or a supervisor would get it in handle_info).
  if (ok) return undefined
  ctx.self.unlink(state.args.owner)
  return { stop: NORMAL }
}

/** `first`: of several statements, answer with the first result (pg_async, as the seed's PQgetResult) rather
 *  than the last (pg_sync, as PQexec). */
function run(command: Term, state: SessionState, answer: (reply: Term) => void, first: boolean, tag?: Ref): void {
  const fail = (text: string) => answer(tuple(ERROR, errorText(text, state)))
  if (command === INFO) {
    answer(
      new Map<Term, Term>([
        [atom('backend_pid'), (state.client as { processID?: number } | undefined)?.processID ?? atom('undefined')],
        [atom('status'), atom(state.status)],
        [atom('queries'), state.queries],
        [atom('mode'), state.args.mode.binary ? atom('binary') : atom('list')],
      ]),
    )
    return
  }
  if (!(command instanceof Tuple) || command.get(0) !== SELECT || (command.length !== 2 && command.length !== 3)) {
    fail(`ts-cnode: unknown request to a pg session\n`)
    return
  }
  const client = state.client
  if (state.status !== 'open' || client === undefined) {
    const text = state.lostText ?? NO_CONNECTION
    state.lostText = undefined
    fail(text)
    return
  }
  let text: string
  let params
  try {
    text = termText(command.get(1), 'query')
    if (text.length > state.args.limits.maxQueryBytes || Buffer.byteLength(text, 'utf8') > state.args.limits.maxQueryBytes)
      throw new BadRequestError(
        `query is too large: ${Buffer.byteLength(text, 'utf8')} bytes, the limit is ${state.args.limits.maxQueryBytes}`,
      )
    if (text.includes('\0')) throw new BadRequestError('query contains a NUL character')
    params = command.length === 3 ? paramValues(command.get(2)) : undefined
  } catch (e) {
    if (e instanceof InvalidEncodingError) {
      fail(e.message)
      return
    }
    if (e instanceof BadRequestError) {
      fail(`ts-cnode: ${e.message}\n`)
      return
    }
    throw e
  }
  state.queries++
  state.inflight++
  const query = new TermQuery(
    text,
    params,
    state.args.mode,
    first,
    (reply) => {
      state.inflight--
      if (tag) state.cancellable.delete(query)
      answer(reply)
    },
    state.gate,
  )
  if (tag) state.cancellable.set(query, tag)
  client.query(query)
}

/**
 * The caller of the select answered at `tag` has given up on it. One not yet executed never will be; one
 * executing is cancelled on the server, and the session's next query waits until the server has taken the
 * CancelRequest (it has signalled the backend when it closes the connection), so the request cannot reach a
 * later query. A select already answered is left alone.
 */
function cancel(tag: Ref, state: SessionState): void {
  const w = state.waiting.findIndex((x) => x.tag !== undefined && termEquals(x.tag, tag))
  if (w >= 0) {
    // Still waiting for the connection: it is dropped (its caller no longer takes the answer).
    state.waiting.splice(w, 1)[0].answer(tuple(ERROR, errorText(QUERY_CANCELED, state)))
    return
  }
  let query: TermQuery | undefined
  for (const [q, t] of state.cancellable)
    if (termEquals(t, tag)) {
      query = q
      break
    }
  if (!query || !query.cancel()) return
  // Executing means no other query has been sent since, so a request already on its way is for this one.
  if (!state.client || state.gate.pending) return
  const sent = cancelBackend(state.client, CANCEL_TIMEOUT_MS)
  if (sent)
    state.gate.pending = sent.finally(() => {
      state.gate.pending = undefined
    })
}

/** A CancelRequest for what the client's backend is running, if the server gave the client its key. */
function cancelBackend(client: pg.Client, timeoutMs: number): Promise<boolean> | undefined {
  const key = client as pg.Client & { processID: number | null; secretKey: number | null }
  if (key.processID === null || key.secretKey === null) return undefined
  return sendCancelRequest({ host: client.host, port: client.port }, key.processID, key.secretKey, timeoutMs)
}

/** The alias of a gen_server call's From: {Pid, [alias | Alias]} (OTP 24+, what pg_sync sends), or {Pid, Ref}. */
function replyAlias(from: Term): Ref | undefined {
  const tag = from instanceof Tuple ? from.get(1) : undefined
  if (tag instanceof Ref) return tag
  if (tag instanceof ImproperList && tag.tail instanceof Ref) return tag.tail
  return undefined
}

function connectionLostText(e: unknown): string {
  const err = e as { severity?: unknown; message?: unknown }
  if (err && typeof err.severity === 'string' && typeof err.message === 'string')
    return formatServerError({ ...(e as ServerErrorFields), severity: err.severity, message: err.message }) + SERVER_CLOSED_CONNECTION
  return SERVER_CLOSED_CONNECTION
}

/** Error texts follow the session's string convention (UTF-8 bytes unless `unicode`). */
function errorText(text: string, state: SessionState): Term {
  return textTerm(text, { binary: false, unicode: state.args.mode.unicode })
}

function closeClient(state: SessionState): void {
  const c = state.client
  state.client = undefined
  state.status = 'failed'
  if (!c) return
  // A query still running would run on to its end on the server: closing the socket does not stop it (the
  // backend notices only when it next writes). Its session ending (owner dead, disconnect, node stopping)
  // cancels it, as query_timeout does.
  // Shorter than a query_timeout cancel may take: a stopping node waits for these (sessionCancels), and a
  // container's stop grace period is 10 s.
  const sent = state.inflight > 0 ? cancelBackend(c, END_CANCEL_TIMEOUT_MS) : undefined
  if (sent) {
    cancelsInFlight.add(sent)
    void sent.finally(() => cancelsInFlight.delete(sent))
  }
  void c.end().catch(() => {})
}

/** CancelRequests sent by sessions that ended, until the server has taken them. */
const cancelsInFlight = new Set<Promise<boolean>>()

/** Resolves once the CancelRequests of ended sessions are taken (or given up, at most 3 s): a process that
 *  exits after stopping its node waits for this, or the queries its sessions were running run on. */
export async function sessionCancels(): Promise<void> {
  await Promise.all([...cancelsInFlight])
}
