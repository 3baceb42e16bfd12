// Typed errors with stable codes. Always thrown, never returned as values.

export class DistError extends Error {
  readonly code: string = 'ERR_DIST'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}
