// Typed errors of the seed drivers. On the Erlang side they become the seeds' {error, Msg} terms.
import { DistError } from '../errors.js'

/** A request a driver or session cannot serve: wrong shape, wrong types, too large. */
export class BadRequestError extends DistError {
  override readonly code: string = 'ERR_DRIVER_BAD_REQUEST'
}

/** Query text that is not UTF-8; the message is the server's own error text for it, as libpq reports it. */
export class InvalidEncodingError extends BadRequestError {
  override readonly code: string = 'ERR_PG_ENCODING'
}

/** A libpq connection string that libpq itself would refuse; the message is libpq's text. */
export class ConninfoError extends DistError {
  override readonly code = 'ERR_PG_CONNINFO'
}

/** A permutation worker thread failed (crashed or could not start). */
export class PermutationWorkerError extends DistError {
  override readonly code = 'ERR_PERM_WORKER'
}
