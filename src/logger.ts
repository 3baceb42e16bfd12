// A minimal logging interface. The node takes any object with these four methods (console, pino, winston
// child loggers all fit). The built-in one writes structured lines to stderr — text (`key=value` fields) or
// JSON — at a level and above; the default prints warnings and errors and drops the rest.

export interface Logger {
  debug(message: string, ...args: unknown[]): void
  info(message: string, ...args: unknown[]): void
  warn(message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFormat = 'text' | 'json'

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 }

/** Fields of a log call: plain-object arguments are merged; anything else is listed under `args`. */
function fields(args: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const rest: unknown[] = []
  for (const a of args) {
    if (a instanceof Error) out.err = a.message
    else if (a !== null && typeof a === 'object' && Object.getPrototypeOf(a) === Object.prototype) Object.assign(out, a)
    else rest.push(a)
  }
  if (rest.length > 0) out.args = rest
  return out
}

const show = (v: unknown): string => {
  const s = typeof v === 'string' ? v : typeof v === 'bigint' ? String(v) : (JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)) ?? String(v))
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

/** A logger writing to stderr at `level` and above. */
export function consoleLogger(level: LogLevel = 'warn', prefix = 'ts-cnode', format: LogFormat = 'text', write: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const at = (l: Exclude<LogLevel, 'silent'>) =>
    ORDER[l] >= ORDER[level]
      ? (message: string, ...args: unknown[]) => {
          const f = fields(args)
          const time = new Date().toISOString()
          if (format === 'json') {
            write(JSON.stringify({ time, level: l, name: prefix, msg: message, ...f }, (_k, x) => (typeof x === 'bigint' ? String(x) : x)))
          } else {
            const kv = Object.entries(f).map(([k, v]) => ` ${k}=${show(v)}`).join('')
            write(`${time} ${l} ${prefix}: ${message}${kv}`)
          }
        }
      : () => {}
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** A logger that drops everything (tests that provoke failures on purpose). */
export const silentLogger: Logger = consoleLogger('silent')

/** What the node uses when none is given: warnings and errors only. */
export const defaultLogger: Logger = consoleLogger('warn')
