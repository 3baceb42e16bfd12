// A minimal logging interface. The node takes any object with these four methods (console, pino, winston
// child loggers all fit); the default prints warnings and errors to stderr and drops the rest.

export interface Logger {
  debug(message: string, ...args: unknown[]): void
  info(message: string, ...args: unknown[]): void
  warn(message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 }

/** A logger writing to stderr (through `console.error`) at `level` and above, each line prefixed. */
export function consoleLogger(level: LogLevel = 'warn', prefix = 'ts-cnode'): Logger {
  const at = (l: Exclude<LogLevel, 'silent'>) =>
    ORDER[l] >= ORDER[level]
      ? (message: string, ...args: unknown[]) => console.error(`[${prefix}] ${l}: ${message}`, ...args)
      : () => {}
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** A logger that drops everything (tests that provoke failures on purpose). */
export const silentLogger: Logger = consoleLogger('silent')

/** What the node uses when none is given: silent below 'warn'. */
export const defaultLogger: Logger = consoleLogger('warn')
