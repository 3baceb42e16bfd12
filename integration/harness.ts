// Test harness: a private EPMD and real `erl` nodes driven over stdin/stdout.
// Every OS process started here is tracked and killed by cleanup() (and on exit), so tests leave nothing behind.
// Addresses come from the environment so the same tests run under docker compose:
//   TS_CNODE_TEST_PGURL (default postgres://postgres@127.0.0.1:5432/test), ERL_TEST_HOST (unset: this host).
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { binaryToTerm, type Term } from '../src/etf/index.js'

const execFileP = promisify(execFile)
const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '..')

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
})

/** The short host name `erl -sname` uses (inet:gethostname/0). */
export const shortHost = os.hostname().split('.')[0]

export const pgUrl = process.env.TS_CNODE_TEST_PGURL ?? 'postgres://postgres@127.0.0.1:5432/test'

export class MissingToolError extends Error {}

/** Throws a clear message when a tool the integration tests need is missing. */
export async function requireTool(tool: string): Promise<void> {
  try {
    await execFileP('sh', ['-c', `command -v ${tool}`])
  } catch {
    throw new MissingToolError(
      `${tool} is not installed: integration tests need Erlang/OTP (erl, erlc, epmd). ` +
        `scripts/test.sh installs it with apt-get when run as root (package erlang-nox / erlang-dev).`,
    )
  }
}

export function tempDir(prefix = 'ts-cnode-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix))
  tempDirs.add(d)
  return d
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })
}

export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host)
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`)
    await sleep(50)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Waits until `check` returns a truthy value (polling), or throws with `what` after the timeout. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(50)
  }
}

/** Kills `c` in cleanup() if it is still running. */
export function track(c: ChildProcess): ChildProcess {
  children.add(c)
  c.once('exit', () => children.delete(c))
  return c
}

async function stopChild(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  const exited = new Promise<void>((r) => c.once('exit', () => r()))
  c.kill(signal)
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(t)
}

/** A real `epmd` on a private port, in the foreground (never the default 4369). */
export class Epmd {
  private constructor(
    readonly port: number,
    private proc: ChildProcess,
  ) {}

  static async start(port?: number): Promise<Epmd> {
    await requireTool('epmd')
    const p = port ?? (await freePort())
    const proc = track(spawn('epmd', ['-port', String(p)], { stdio: 'ignore' }))
    await waitForPort(p)
    return new Epmd(p, proc)
  }

  get pid(): number | undefined {
    return this.proc.pid
  }

  /** Kills it (SIGKILL by default): registrations die with it. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await stopChild(this.proc, signal)
  }

  /** Starts it again on the same port. */
  async restart(): Promise<void> {
    await this.kill()
    this.proc = track(spawn('epmd', ['-port', String(this.port)], { stdio: 'ignore' }))
    await waitForPort(this.port)
  }

  async names(): Promise<string> {
    const { stdout } = await execFileP('epmd', ['-port', String(this.port), '-names'])
    return stdout
  }

  async stop(): Promise<void> {
    await stopChild(this.proc)
  }
}

let harnessBeamDir: Promise<string> | undefined

/** Compiles Erlang sources with erlc into a fresh temp dir; returns the dir (for -pa). */
export async function compileErlang(files: string[], outDir = tempDir('ts-cnode-beam-')): Promise<string> {
  await requireTool('erlc')
  await execFileP('erlc', ['-o', outDir, ...files])
  return outDir
}

/** The shipped Erlang modules (erlang/src) compiled into a temp dir. */
export function compileShippedModules(): Promise<string> {
  const dir = path.join(repoRoot, 'erlang', 'src')
  return compileErlang(readdirSync(dir).filter((f) => f.endsWith('.erl')).map((f) => path.join(dir, f)))
}

export class ErlEvalError extends Error {
  constructor(
    readonly expr: string,
    readonly printed: string,
  ) {
    super(`erl raised evaluating ${expr.length > 200 ? expr.slice(0, 200) + '…' : expr}: ${printed}`)
  }
}

export interface ErlNodeOptions {
  /** `a` (with sname: a@<shortHost>), `a@host`, or with longNames `a@127.0.0.1`. */
  name: string
  longNames?: boolean
  cookie?: string
  epmdPort: number
  hidden?: boolean
  /** Extra code paths (-pa). */
  codePath?: string[]
  /** Extra `erl` arguments, e.g. ['-kernel', 'net_ticktime', '4'] or ['+S', '16']. */
  args?: string[]
  env?: Record<string, string>
  /** The directory erl runs in (for relative paths in its arguments). */
  cwd?: string
  /** Milliseconds to wait for the node to come up. */
  startTimeout?: number
}

interface Pending {
  resolve: (v: { printed: string; bin: Buffer }) => void
  reject: (e: Error) => void
  expr: string
}

/** A real `erl` node running the ts_harness agent: `eval` runs an expression there. */
export class ErlNode {
  private nextId = 1
  private pending = new Map<number, Pending>()
  private buf = ''
  /** Everything the node printed that was not a harness reply (for debugging failures). */
  output = ''
  readonly exited: Promise<number | null>

  private constructor(
    readonly proc: ChildProcess,
    readonly nodeName: string,
  ) {
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)))
    proc.once('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`erl node ${nodeName} exited\n${this.output}`))
      this.pending.clear()
    })
  }

  static async start(opts: ErlNodeOptions): Promise<ErlNode> {
    await requireTool('erl')
    harnessBeamDir ??= compileErlang([path.join(here, 'erl', 'ts_harness.erl')])
    const beamDir = await harnessBeamDir
    const args = [
      '-noshell',
      opts.longNames ? '-name' : '-sname',
      opts.name,
      '-setcookie',
      opts.cookie ?? 'ts_cnode_test_cookie',
      '-start_epmd',
      'false',
      '-pa',
      beamDir,
      ...(opts.codePath ?? []).flatMap((d) => ['-pa', d]),
      ...(opts.hidden ? ['-hidden'] : []),
      ...(opts.args ?? []),
      '-eval',
      'ts_harness:start()',
    ]
    const proc = track(
      spawn('erl', args, {
        cwd: opts.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, ERL_EPMD_PORT: String(opts.epmdPort), ...opts.env },
      }),
    )
    return new Promise((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => {
        proc.kill('SIGKILL')
        reject(new Error(`erl ${opts.name} did not start within ${opts.startTimeout ?? 20000} ms:\n${out}`))
      }, opts.startTimeout ?? 20000)
      const onData = (d: Buffer) => {
        out += d.toString()
        const m = /@@H ready (\S+)\n/.exec(out)
        if (m) {
          clearTimeout(timer)
          proc.stdout!.off('data', onData)
          const node = new ErlNode(proc, m[1])
          node.attach(out.slice(m.index + m[0].length))
          resolve(node)
        }
      }
      proc.stdout!.on('data', onData)
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`erl ${opts.name} exited with ${code} while starting:\n${out}`))
      })
    })
  }

  private attach(rest: string): void {
    this.proc.stdout!.on('data', (d: Buffer) => this.onData(d.toString()))
    this.proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()))
    if (rest) this.onData(rest)
  }

  private onData(s: string): void {
    this.buf += s
    let nl: number
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl)
      this.buf = this.buf.slice(nl + 1)
      const m = /^@@H (\d+) (ok|error) (\S*) (\S*)$/.exec(line)
      if (!m) {
        this.output += line + '\n'
        continue
      }
      const p = this.pending.get(Number(m[1]))
      if (!p) continue
      this.pending.delete(Number(m[1]))
      const printed = Buffer.from(m[3], 'base64').toString('utf8')
      if (m[2] === 'ok') p.resolve({ printed, bin: Buffer.from(m[4], 'base64') })
      else p.reject(new ErlEvalError(p.expr, printed))
    }
  }

  private request(expr: string, timeoutMs: number): Promise<{ printed: string; bin: Buffer }> {
    const e = expr.trim().endsWith('.') ? expr.trim() : expr.trim() + '.'
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`erl ${this.nodeName}: no answer to ${e} within ${timeoutMs} ms\n${this.output}`))
      }, timeoutMs)
      this.pending.set(id, {
        expr: e,
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      })
      this.proc.stdin!.write(`${id} ${Buffer.from(e, 'utf8').toString('base64')}\n`)
    })
  }

  /** Evaluates an Erlang expression sequence; resolves with the value printed on one line (`~p` style). */
  async eval(expr: string, timeoutMs = 30_000): Promise<string> {
    return (await this.request(expr, timeoutMs)).printed
  }

  /** Evaluates and resolves with `term_to_binary(Value)` (decode it with binaryToTerm). */
  async evalBinary(expr: string, timeoutMs = 30_000): Promise<Buffer> {
    return (await this.request(expr, timeoutMs)).bin
  }

  /** Evaluates and resolves with the value as a term (evalBinary, decoded). */
  async evalTerm(expr: string, timeoutMs = 30_000): Promise<Term> {
    return binaryToTerm(await this.evalBinary(expr, timeoutMs))
  }

  get pid(): number | undefined {
    return this.proc.pid
  }

  /** Sends a signal to the emulator (SIGSTOP / SIGCONT / SIGKILL). */
  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig)
  }

  async kill(): Promise<void> {
    await stopChild(this.proc, 'SIGKILL')
  }

  /** Stops the node: init:stop() and, failing that, a kill. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    this.proc.stdin!.end()
    await Promise.race([this.exited, sleep(5000)])
    await stopChild(this.proc, 'SIGKILL')
  }
}

/** Kills every process and removes every temp dir this harness started. Call from `test.after`. */
export async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, 'SIGKILL', 1000)))
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  tempDirs.clear()
  harnessBeamDir = undefined
}

/** Fails with a message saying what is missing when PostgreSQL does not answer. */
export async function requirePostgres(): Promise<void> {
  const u = new URL(pgUrl)
  try {
    await waitForPort(Number(u.port || 5432), u.hostname, 3000)
  } catch {
    throw new MissingToolError(
      `PostgreSQL does not answer at ${u.host}: set TS_CNODE_TEST_PGURL, or let scripts/test.sh start it ` +
        `(it runs pg_ctlcluster ... main start, or installs postgresql with apt-get when run as root).`,
    )
  }
}

