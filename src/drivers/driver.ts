// The some_driver_NN pool: registered processes that Erlang picks by scheduler id (some_driver.erl's
// client_port/0, from the efficiency guide). Each driver is one process with its own queue (the
// driver-level lock): it serves the functional commands itself (permutations; 100,000 elements or more
// in a worker thread, the driver_async analogue, while it keeps serving) and creates pg sessions.
//
// Requests (gen_server:call):
//   {pg_connect, ConnStr, Opts}        -> {ok, SessionPid} | {error, Msg}   (answered once connected)
//   {pg_connect_async, ConnStr, Opts}  -> {ok, SessionPid}, then the session sends
//                                          {SessionPid, {data, ok | {error, Msg}}} to the caller
//   {next_perm, Bin} | {prev_perm, Bin} -> Bin  (32-bit little-endian integers; a list gives a list)
//   whoami                              -> the driver's registered name
//   stats                               -> #{name, served, sessions, async_jobs, callers => [{Pid, N}]}
// Anything else                        -> {error, unknown_request}
import { endianness } from 'node:os'
import { Atom, Pid, Tuple, atom, tuple, type Term } from '../etf/terms.js'
import { formatTerm, pidKey, spawnGenServer, type From, type GenServerCallbacks, type GenServerContext, type Process, type Runtime } from '../runtime/index.js'
import { BadRequestError } from './errors.js'
import { PermutationPool } from './perm-pool.js'
import { permute, type PermutationKind } from './permutation.js'
import { parseConnectOptions, termText } from './pg-result.js'
import { DEFAULT_SESSION_LIMITS, spawnSession, type SessionLimits } from './session.js'

const OK = atom('ok')
const ERROR = atom('error')
const PG_CONNECT = atom('pg_connect')
const PG_CONNECT_ASYNC = atom('pg_connect_async')
const NEXT_PERM = atom('next_perm')
const PREV_PERM = atom('prev_perm')
const WHOAMI = atom('whoami')
const STATS = atom('stats')
const BADARG = atom('badarg')
const UNKNOWN_REQUEST = atom('unknown_request')
const SHUTDOWN = atom('shutdown')

const LITTLE_ENDIAN = endianness() === 'LE'

export interface DriverOptions {
  /** How many drivers, some_driver_01..NN (default 16, as the efficiency guide). */
  count?: number
  /** Lists this long or longer are permuted in a worker thread (default 100,000, as the seed). */
  asyncThreshold?: number
  /** Worker threads for permutations (default: cores - 1, between 1 and 4). */
  poolSize?: number
  /** Largest query a session accepts, in bytes (default 64 MiB). */
  maxQueryBytes?: number
  /** How many distinct callers each driver remembers for `stats` (default 4096, oldest forgotten first). */
  trackCallers?: number
  /** The environment libpq defaults come from (PGHOST, PGUSER, ...); default process.env. */
  env?: NodeJS.ProcessEnv
}

export interface DriverStats {
  name: Atom
  served: number
  sessions: number
  asyncJobs: number
  callers: { pid: Pid; count: number }[]
}

export interface Drivers {
  readonly names: readonly Atom[]
  readonly processes: readonly Process[]
  readonly pool: PermutationPool
  stats(): DriverStats[]
  /** Stops the drivers and the worker pool; sessions stay with their owners. */
  stop(): Promise<void>
}

interface DriverState {
  name: Atom
  served: number
  sessions: number
  asyncJobs: number
  callers: Map<string, { pid: Pid; count: number }>
}

/** some_driver_01 for 1, as some_driver.erl names them. */
export const driverName = (i: number): Atom => atom(`some_driver_${String(i).padStart(2, '0')}`)

type RuntimeHost = Runtime | { runtime: Runtime }

/** Starts the registered drivers on a node (or a bare Runtime). */
export async function startDrivers(host: RuntimeHost, opts: DriverOptions = {}): Promise<Drivers> {
  const rt: Runtime = 'runtime' in host ? host.runtime : host
  const count = opts.count ?? 16
  if (!Number.isInteger(count) || count < 1 || count > 99) throw new BadRequestError(`driver count must be 1..99, got ${count}`)
  const pool = new PermutationPool({ size: opts.poolSize })
  const cfg: DriverConfig = {
    pool,
    asyncThreshold: opts.asyncThreshold ?? 100_000,
    limits: { ...DEFAULT_SESSION_LIMITS, ...(opts.maxQueryBytes !== undefined ? { maxQueryBytes: opts.maxQueryBytes } : {}) },
    trackCallers: opts.trackCallers ?? 4096,
    env: opts.env,
  }
  const states: DriverState[] = []
  const processes: Process[] = []
  const names: Atom[] = []
  let stopping = false
  // A driver that dies of anything but the stop is started again under its name, as a supervisor's
  // permanent child would be: the clients of its scheduler must always find it.
  const start = (i: number) => {
    const p = spawnGenServer<DriverState, DriverState>(rt, driverServer(cfg), { name: names[i], args: states[i] })
    processes[i] = p
    void p.done.then((reason) => {
      // `shutdown` is the node stopping every process: nothing to restart into.
      if (stopping || processes[i] !== p || reason === SHUTDOWN) return
      rt.logger.warn(`${names[i].name} exited (${formatTerm(reason)}): restarting it`)
      try {
        start(i)
      } catch (e) {
        rt.logger.error(`${names[i].name} could not be restarted: ${e instanceof Error ? e.message : String(e)}`)
      }
    })
  }
  for (let i = 0; i < count; i++) {
    const name = driverName(i + 1)
    names.push(name)
    states.push({ name, served: 0, sessions: 0, asyncJobs: 0, callers: new Map() })
    start(i)
  }
  return {
    names,
    get processes() {
      return processes.slice()
    },
    pool,
    stats: () => states.map(statsOf),
    async stop() {
      stopping = true
      for (const p of processes) if (p.alive) rt.exit(p.pid, SHUTDOWN)
      await Promise.all(processes.map((p) => p.done))
      await pool.close()
    },
  }
}

interface DriverConfig {
  pool: PermutationPool
  asyncThreshold: number
  limits: SessionLimits
  trackCallers: number
  env?: NodeJS.ProcessEnv
}

function statsOf(s: DriverState): DriverStats {
  return { name: s.name, served: s.served, sessions: s.sessions, asyncJobs: s.asyncJobs, callers: [...s.callers.values()].map((c) => ({ ...c })) }
}

function driverServer(cfg: DriverConfig): GenServerCallbacks<DriverState, DriverState> {
  return {
    init: (state) => state,
    handleCall(request, from, state, ctx) {
      count(state, from, cfg.trackCallers)
      try {
        const r = serve(request, from, state, ctx, cfg)
        return r === LATER ? { noreply: true } : { reply: r }
      } catch (e) {
        if (e instanceof BadRequestError) return { reply: tuple(ERROR, `ts-cnode: ${e.message}\n`) }
        throw e
      }
    },
  }
}

/** serve()'s answer when the reply is sent later with ctx.reply (a session, a worker thread). */
const LATER = Symbol('later')

function serve(request: Term, from: From, state: DriverState, ctx: GenServerContext, cfg: DriverConfig): Term | typeof LATER {
  if (request === WHOAMI) return state.name
  if (request === STATS) return statsTerm(state)
  if (!(request instanceof Tuple) || request.length < 2) return tuple(ERROR, UNKNOWN_REQUEST)
  const tag = request.get(0)
  if (tag === NEXT_PERM || tag === PREV_PERM) {
    if (request.length !== 2) return tuple(ERROR, BADARG)
    return permutation(tag === NEXT_PERM ? 'next_perm' : 'prev_perm', request.get(1), from, state, ctx, cfg)
  }
  if ((tag === PG_CONNECT || tag === PG_CONNECT_ASYNC) && request.length === 3) {
    const conninfo = termText(request.get(1), 'the connection string')
    const mode = parseConnectOptions(request.get(2))
    const owner = from.get(0)
    if (!(owner instanceof Pid)) return tuple(ERROR, BADARG)
    const sync = tag === PG_CONNECT
    state.sessions++
    const session = spawnSession(ctx.self.runtime, {
      owner,
      conninfo,
      mode,
      connectReply: sync ? { kind: 'sync', from } : { kind: 'async' },
      limits: cfg.limits,
      env: cfg.env,
    })
    void session.done.then(() => void state.sessions--)
    return sync ? LATER : tuple(OK, session.pid)
  }
  return tuple(ERROR, UNKNOWN_REQUEST)
}

function permutation(
  kind: PermutationKind,
  data: Term,
  from: From,
  state: DriverState,
  ctx: GenServerContext,
  cfg: DriverConfig,
): Term | typeof LATER {
  const asList = !Buffer.isBuffer(data)
  const a = asList ? int32sFromList(data) : int32sFromBinary(data)
  if (a === undefined) return tuple(ERROR, BADARG)
  const result = (r: Int32Array): Term => (asList ? Array.from(r) : int32sToBinary(r))
  if (a.length < cfg.asyncThreshold) {
    permute(kind, a)
    return result(a)
  }
  state.asyncJobs++
  cfg.pool.run(kind, a).then(
    (r) => ctx.reply(from, result(r)),
    (e: unknown) => ctx.reply(from, tuple(ERROR, `ts-cnode: ${e instanceof Error ? e.message : String(e)}\n`)),
  )
  return LATER
}

/** A fresh Int32Array (it must own its buffer to be transferred to a worker) from little-endian bytes. */
function int32sFromBinary(b: Buffer): Int32Array | undefined {
  if (b.length % 4 !== 0) return undefined
  const a = new Int32Array(b.length / 4)
  if (LITTLE_ENDIAN) new Uint8Array(a.buffer).set(b)
  else for (let i = 0; i < a.length; i++) a[i] = b.readInt32LE(i * 4)
  return a
}

/** The result as a binary over the array's own memory: no copy on a little-endian host. */
function int32sToBinary(a: Int32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(a.buffer, a.byteOffset, a.byteLength)
  const b = Buffer.allocUnsafe(a.length * 4)
  for (let i = 0; i < a.length; i++) b.writeInt32LE(a[i], i * 4)
  return b
}

function int32sFromList(t: Term): Int32Array | undefined {
  if (typeof t === 'string') return Int32Array.from(t, (c) => c.codePointAt(0)!)
  if (!Array.isArray(t)) return undefined
  const a = new Int32Array(t.length)
  for (let i = 0; i < t.length; i++) {
    const v = t[i]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) return undefined
    a[i] = v
  }
  return a
}

function count(state: DriverState, from: From, limit: number): void {
  state.served++
  const pid = from.get(0)
  if (!(pid instanceof Pid) || limit <= 0) return
  const key = pidKey(pid)
  const c = state.callers.get(key)
  if (c) {
    c.count++
    return
  }
  if (state.callers.size >= limit) state.callers.delete(state.callers.keys().next().value as string)
  state.callers.set(key, { pid, count: 1 })
}

function statsTerm(s: DriverState): Term {
  return new Map<Term, Term>([
    [atom('name'), s.name],
    [atom('served'), s.served],
    [atom('sessions'), s.sessions],
    [atom('async_jobs'), s.asyncJobs],
    [atom('callers'), [...s.callers.values()].map((c) => tuple(c.pid, c.count))],
  ])
}
