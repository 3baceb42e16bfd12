// The driver_async analogue: a worker thread that permutes an Int32Array handed over by transfer
// (no copy) and hands it back the same way.
import { parentPort } from 'node:worker_threads'
import { permute, type PermutationKind } from './permutation.js'

export interface PermJob {
  id: number
  kind: PermutationKind
  buffer: ArrayBuffer
}
export interface PermDone {
  id: number
  buffer: ArrayBuffer
}

if (parentPort) {
  const port = parentPort
  port.on('message', (job: PermJob) => {
    permute(job.kind, new Int32Array(job.buffer))
    const done: PermDone = { id: job.id, buffer: job.buffer }
    port.postMessage(done, [job.buffer])
  })
}
