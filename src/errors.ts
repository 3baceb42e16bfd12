// Typed errors with stable codes. Always thrown, never returned as values.

export class DistError extends Error {
  readonly code: string = 'ERR_DIST'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** The `code` of an error's socket `cause` (EADDRINUSE, ECONNREFUSED...), else `otherwise`: for messages. */
export function causeCode(options: { cause?: unknown } | undefined, otherwise: string): string {
  return (options?.cause as { code?: string } | undefined)?.code ?? otherwise
}
