// Typed errors of the External Term Format codec.
import { DistError } from '../errors.js'

/** Malformed or hostile ETF input. `offset` is the byte position (in the decoded buffer) where it was detected. */
export class DecodeError extends DistError {
  override readonly code: string = 'ERR_ETF_DECODE'
  constructor(
    readonly reason: string,
    readonly offset: number,
    options?: { cause?: unknown },
  ) {
    super(`${reason} at offset ${offset}`, options)
  }
}

/** The input ends before the term does (a declared length runs past the end, or a field is cut). */
export class TruncatedTermError extends DecodeError {
  override readonly code: string = 'ERR_ETF_TRUNCATED'
}

/** A configured bound (nesting depth, atom length, uncompressed size, bignum size) was exceeded. */
export class LimitExceededError extends DecodeError {
  override readonly code: string = 'ERR_ETF_LIMIT'
}

/** A tag that is known but refused here (LOCAL_EXT, FUN_EXT, ATOM_CACHE_REF without a cache). */
export class UnsupportedTagError extends DecodeError {
  override readonly code: string = 'ERR_ETF_UNSUPPORTED'
  constructor(
    readonly tag: number,
    reason: string,
    offset: number,
  ) {
    super(reason, offset)
  }
}

/** A JS value that has no Erlang representation (a function, NaN, an out-of-range pid field, ...). */
export class EncodeError extends DistError {
  override readonly code: string = 'ERR_ETF_ENCODE'
}
