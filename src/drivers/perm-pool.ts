// The driver_async analogue for the permutation driver: a small pool of worker threads. A job's
// Int32Array is transferred to the worker and back (its ArrayBuffer moves, nothing is copied), so
// the event loop only pays for the hand-over while a million-element permutation runs.
import { availableParallelism } from 'node:os'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { PermutationWorkerError } from './errors.js'
import type { PermDone, PermJob } from './perm-worker.js'
import type { PermutationKind } from './permutation.js'

export interface PermutationPoolOptions {
  /** Worker threads at most; default: one less than the cores, at least 1, at most 4. */
  size?: number
}

interface Pending {
  job: PermJob
  resolve: (a: Int32Array) => void
  reject: (e: Error) => void
}

interface Slot {
  worker: Worker
  busy?: Pending
}

export class PermutationPool {
  readonly size: number
  private readonly slots: Slot[] = []
  private readonly queue: Pending[] = []
  private nextId = 1
  private closed = false

  constructor(opts: PermutationPoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? Math.min(4, availableParallelism() - 1))
  }

  /**
   * Permutes `a` in a worker thread and resolves with the permuted array (the same memory, moved
   * back). `a` must own its whole ArrayBuffer: it is transferred, so `a` is detached meanwhile.
   */
  run(kind: PermutationKind, a: Int32Array): Promise<Int32Array> {
    if (this.closed) return Promise.reject(new PermutationWorkerError('the permutation pool is closed'))
    if (a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength || !(a.buffer instanceof ArrayBuffer))
      return Promise.reject(new PermutationWorkerError('the array must own its whole ArrayBuffer to be transferred'))
    return new Promise<Int32Array>((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, kind, buffer: a.buffer as ArrayBuffer }, resolve, reject })
      this.pump()
    })
  }

  /** Jobs waiting for a worker plus jobs running. */
  get load(): number {
    return this.queue.length + this.slots.filter((s) => s.busy).length
  }

  async close(): Promise<void> {
    this.closed = true
    const err = new PermutationWorkerError('the permutation pool is closed')
    for (const p of this.queue.splice(0)) p.reject(err)
    await Promise.all(
      this.slots.splice(0).map((s) => {
        s.busy?.reject(err)
        return s.worker.terminate()
      }),
    )
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.busy)
      if (!slot) {
        if (this.slots.length >= this.size) return
        slot = this.spawn()
      }
      const p = this.queue.shift()!
      slot.busy = p
      slot.worker.ref()
      slot.worker.postMessage(p.job, [p.job.buffer])
    }
  }

  private spawn(): Slot {
    const worker = startWorker()
    const slot: Slot = { worker }
    this.slots.push(slot)
    worker.unref()
    worker.on('message', (done: PermDone) => {
      const p = slot.busy
      slot.busy = undefined
      worker.unref()
      if (p && p.job.id === done.id) p.resolve(new Int32Array(done.buffer))
      this.pump()
    })
    const fail = (e: Error) => {
      const i = this.slots.indexOf(slot)
      if (i < 0) return
      this.slots.splice(i, 1)
      const p = slot.busy
      slot.busy = undefined
      p?.reject(new PermutationWorkerError(`permutation worker failed: ${e.message}`, { cause: e }))
      void worker.terminate()
      if (!this.closed) this.pump()
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`worker exited with code ${code}`)))
    return slot
  }
}

// Built code runs perm-worker.js directly; under tsx (sources, tests) the worker first registers
// tsx's loader so it can import the .ts module.
function startWorker(): Worker {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return new Worker(new URL('./perm-worker.js', here))
  const require = createRequire(here)
  const tsxApi = path.join(path.dirname(require.resolve('tsx/esm/api')), 'index.mjs')
  const target = new URL('./perm-worker.ts', here).href
  const boot =
    `import(${JSON.stringify(pathToFileURL(tsxApi).href)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(target)}) })` +
    `.catch((e) => { throw e })`
  return new Worker(boot, { eval: true })
}
