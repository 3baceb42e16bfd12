// Starts integration/target-node.ts in a child process and talks to it: its JSON log lines, memory
// figures, and whether it is still alive. The child is tracked by the harness (killed by cleanup() and on exit).
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import * as path from 'node:path'
import { repoRoot, track } from './harness.js'
import type { TargetConfig } from './target-node.js'

export type { TargetConfig } from './target-node.js'

export interface LogLine {
  time: string
  level: string
  msg: string
  [k: string]: unknown
}

export interface Mem {
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

export class Target {
  readonly logs: LogLine[] = []
  /** Everything on stderr that is not a JSON log line (a crash's stack trace lands here). */
  stderr = ''
  exitCode: number | null | undefined
  exitSignal: NodeJS.Signals | null | undefined
  readonly exited: Promise<void>
  private nextId = 1
  private pending = new Map<string, (v: unknown) => void>()
  private out = ''

  private constructor(
    readonly proc: ChildProcess,
    readonly name: string,
    readonly creation: number,
    readonly sinkId: number,
  ) {
    this.exited = new Promise((r) =>
      proc.once('exit', (code, sig) => {
        this.exitCode = code
        this.exitSignal = sig
        for (const p of this.pending.values()) p(undefined)
        this.pending.clear()
        r()
      }),
    )
  }

  static async start(cfg: TargetConfig, timeoutMs = 30_000): Promise<Target> {
    const proc = track(
      spawn(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', path.join(repoRoot, 'integration', 'target-node.ts'), JSON.stringify(cfg)],
        { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
      ),
    )
    let early = ''
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL')
        reject(new Error(`target node did not start within ${timeoutMs} ms:\n${early}`))
      }, timeoutMs)
      const onOut = (d: Buffer) => {
        early += d.toString()
        const m = /@@T ready (\{.*\})\n/.exec(early)
        if (!m) return
        clearTimeout(timer)
        proc.stdout!.off('data', onOut)
        proc.stderr!.off('data', onErr)
        proc.off('exit', onExit)
        const info = JSON.parse(m[1]) as { name: string; creation: number; sink: number }
        const t = new Target(proc, info.name, info.creation, info.sink)
        t.attach(early.slice(m.index + m[0].length))
        resolve(t)
      }
      const onErr = (d: Buffer) => (early += d.toString())
      const onExit = (code: number | null) => {
        clearTimeout(timer)
        reject(new Error(`target node exited with ${code} while starting:\n${early}`))
      }
      proc.stdout!.on('data', onOut)
      proc.stderr!.on('data', onErr)
      proc.once('exit', onExit)
    })
  }

  private attach(rest: string): void {
    let errBuf = ''
    this.proc.stderr!.on('data', (d: Buffer) => {
      errBuf += d.toString()
      let nl: number
      while ((nl = errBuf.indexOf('\n')) >= 0) {
        const line = errBuf.slice(0, nl)
        errBuf = errBuf.slice(nl + 1)
        if (line.startsWith('{')) {
          try {
            this.logs.push(JSON.parse(line) as LogLine)
            if (this.logs.length > 200_000) this.logs.splice(0, 100_000)
            continue
          } catch {
            // not JSON after all
          }
        }
        this.stderr += line + '\n'
      }
    })
    this.proc.stdout!.on('data', (d: Buffer) => this.onOut(d.toString()))
    if (rest) this.onOut(rest)
  }

  private onOut(s: string): void {
    this.out += s
    let nl: number
    while ((nl = this.out.indexOf('\n')) >= 0) {
      const line = this.out.slice(0, nl)
      this.out = this.out.slice(nl + 1)
      const m = /^@@T (\d+) (.*)$/.exec(line)
      if (!m) continue
      const p = this.pending.get(m[1])
      this.pending.delete(m[1])
      p?.(JSON.parse(m[2]))
    }
  }

  get alive(): boolean {
    return this.exitCode === undefined
  }

  /** A short description of how it died (for assertion messages). */
  get death(): string {
    return `exit code ${this.exitCode}, signal ${this.exitSignal}\n${this.stderr.slice(-4000)}`
  }

  private command<T>(cmd: string, timeoutMs = 30_000): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`target node is dead: ${this.death}`))
    const id = String(this.nextId++)
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`target node did not answer ${cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, (v) => {
        clearTimeout(timer)
        if (v === undefined) reject(new Error(`target node died: ${this.death}`))
        else resolve(v as T)
      })
      this.proc.stdin!.write(`${id} ${cmd}\n`)
    })
  }

  /** Memory after a full GC. */
  mem(): Promise<Mem> {
    return this.command<Mem>('mem')
  }

  /** Resident set size now and its peak so far (VmRSS, VmHWM from /proc; Linux), in bytes. */
  rss(): { now: number; peak: number } {
    const status = readFileSync(`/proc/${this.proc.pid}/status`, 'utf8')
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024
    return { now: kb('VmRSS'), peak: kb('VmHWM') }
  }

  async stop(): Promise<void> {
    if (!this.alive) return
    this.proc.stdin!.end()
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000)
    await this.exited
    clearTimeout(t)
  }
}
