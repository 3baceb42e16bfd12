// ts-cnode: an Erlang distribution node in TypeScript. The public entry point.
export { Node, type NodeOptions } from './node.js'

// Terms and the External Term Format codec.
export * from './etf/index.js'

// Processes and OTP interop.
export {
  Process,
  Mailbox,
  Runtime,
  FunctionRegistry,
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

export { consoleLogger, silentLogger, defaultLogger, type Logger, type LogLevel } from './logger.js'
