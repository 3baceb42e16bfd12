// The process runtime: processes, mailboxes, links, monitors, aliases, gen_server and rpc glue.
export { Runtime, DEFAULT_CALL_TIMEOUT, type RuntimeOptions, type Dest, type MonitorTarget, type AliasMode, type SpawnOptions, type SpawnResolver } from './runtime.js'
export { Process, type ProcessFn, type Timed } from './process.js'
export { Mailbox, type Matcher, type ReceiveOptions } from './mailbox.js'
export {
  reply,
  aliasOfTag,
  spawnGenServer,
  startGenServer,
  type From,
  type CallResult,
  type NoReplyResult,
  type GenServerCallbacks,
  type GenServerContext,
  type GenServerOptions,
} from './genserver.js'
export { FunctionRegistry, type RpcFunction, type FunctionContext, type Outcome } from './functions.js'
export { PgScope } from './pg.js'
export { exitReasonOf, jsErrorReason } from './reasons.js'
export { formatTerm } from './format.js'
export { pidKey, refKey, samePid, sameRef, toAtom, type Name } from './ids.js'
export type { ControlMessage, Transport } from './signals.js'
export * from './errors.js'
