// The OS processes the echo benchmark measures, beside the harness's erl nodes: the erl_interface C-node
// and the ts-cnode node (bench/ts-echo.ts) as a child process, so that its RSS is its own.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cleanup as harnessCleanup } from '../integration/harness.js'

/** The cookie every node of the benchmarks shares. */
export const BENCH_COOKIE = 'ts_cnode_bench_cookie'

/** The upper median of xs (a sorted copy's middle element). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/** Scheduler busy-waiting off on every erl node: three VMs and a Node.js process share two cores here. */
export const ERL_ARGS = ['+sbwt', 'none', '+sbwtdcpu', 'none', '+sbwtdio', 'none']

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})

/** A child process that printed "READY <node> ..." on stdout. */
export class Target {
  output = ''
  private constructor(
    readonly proc: ChildProcess,
    readonly node: string,
  ) {}

  get pid(): number {
    return this.proc.pid as number
  }

  /** Resident set size in bytes, from /proc/<pid>/status. */
  rss(): number {
    return rssOf(this.pid)
  }

  /** SIGTERM (ts-echo stops its node and exits, writing a --cpu-prof profile), SIGKILL after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    const p = this.proc
    if (p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise<void>((r) => p.once('exit', () => r()))
    p.kill('SIGTERM')
    const t = setTimeout(() => p.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(t)
  }

  static start(what: string, cmd: string, args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<Target> {
    const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    children.add(proc)
    proc.once('exit', () => children.delete(proc))
    return new Promise((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => {
        proc.kill('SIGKILL')
        reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${out}`))
      }, timeoutMs)
      const onExit = (code: number | null) => {
        clearTimeout(timer)
        reject(new Error(`${what} exited with ${code} while starting:\n${out}`))
      }
      proc.once('exit', onExit)
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
      const onData = (d: Buffer) => {
        out += d.toString()
        const m = /READY (\S+)/.exec(out)
        if (m === null) return
        clearTimeout(timer)
        proc.off('exit', onExit)
        proc.stdout!.off('data', onData)
        const t = new Target(proc, m[1])
        t.output = out
        proc.stdout!.on('data', (d2: Buffer) => (t.output += d2.toString()))
        proc.stderr!.on('data', (d2: Buffer) => (t.output += d2.toString()))
        resolve(t)
      }
      proc.stdout!.on('data', onData)
    })
  }
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status)
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

const CLK_TCK = 100

/** utime + stime of a process and all its threads, in microseconds; 0 once it is gone. */
export function cpuUsOf(pid: number): number {
  return cpuOf(pid).total
}

/** A process's CPU time in µs, user + system and the system part, from one read of /proc/<pid>/stat. */
export function cpuOf(pid: number): { total: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const sys = (Number(f[12]) * 1e6) / CLK_TCK
    return { total: (Number(f[11]) * 1e6) / CLK_TCK + sys, sys }
  } catch {
    return { total: 0, sys: 0 }
  }
}

/** Samples a process's RSS every `everyMs` until stopped; resolves with the peak. */
export function samplePeakRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = 0
  const take = () => {
    try {
      peak = Math.max(peak, rssOf(pid))
    } catch {
      // the process went away; keep the peak seen so far
    }
  }
  take()
  const timer = setInterval(take, everyMs)
  return {
    stop() {
      clearInterval(timer)
      take()
      return peak
    },
  }
}

/** Kills every child started here (for the bench's finally). */
export async function stopAllTargets(): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve()
          c.once('exit', () => resolve())
          c.kill('SIGKILL')
        }),
    ),
  )
}

/** Ctrl-C or SIGTERM during a bench: kill every child (ours and the harness's) before going. */
export function cleanupOnSignals(): void {
  const onSignal = (sig: NodeJS.Signals) => {
    void Promise.all([stopAllTargets(), harnessCleanup()]).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
}
