// ts-cnode: an Erlang distribution node in TypeScript. The public entry point.
export { Node, type NodeOptions } from './node.js'

// Terms and the External Term Format codec.
export * from './etf/index.js'

// Processes and OTP interop.
export {
  Process,
  Mailbox,
  Runtime,
  DEFAULT_CALL_TIMEOUT,
  FunctionRegistry,
  PgScope,
  reply,
  spawnGenServer,
  startGenServer,
  exitReasonOf,
  jsErrorReason,
  formatTerm,
  type ProcessFn,
  type Timed,
  type Matcher,
  type ReceiveOptions,
  type Dest,
  type MonitorTarget,
  type AliasMode,
  type SpawnOptions,
  type Name,
  type From,
  type CallResult,
  type NoReplyResult,
  type GenServerCallbacks,
  type GenServerContext,
  type GenServerOptions,
  type RpcFunction,
  type FunctionContext,
  type ControlMessage,
} from './runtime/index.js'

// Errors: the base class, the runtime's, the distribution layer's.
export { DistError } from './errors.js'
export * from './runtime/errors.js'
export * from './dist/errors.js'
export * from './epmd/errors.js'

export { consoleLogger, silentLogger, defaultLogger, type Logger, type LogLevel } from './logger.js'

// The seed drivers (some_driver_NN, pg sessions, permutations), for a node of your own.
export { startDrivers, driverName, sessionCancels, type DriverOptions, type Drivers, type DriverStats } from './drivers/index.js'
export { BadRequestError, ConninfoError, PermutationWorkerError, PgConnectError } from './drivers/index.js'

// EPMD: the client calls and the embedded server; the embedded database for trying the drivers.
export { register as epmdRegister, portPlease, names as epmdNames, startEpmdServer } from './epmd/index.js'
export { startEmbeddedDb, type EmbeddedDb, type EmbeddedDbOptions } from './embedded-db.js'
