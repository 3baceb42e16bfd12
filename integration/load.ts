// The load scenario shared by integration/load.test.ts (CI size) and scripts/soak.ts (one million): N erl
// processes, each with a window of messages in flight to its own TypeScript echo process on a node in its
// own OS process, every echo checked for loss and per-sender order (integration/erl/ts_peer.erl load/5);
// the node's memory is sampled before, during and after.
import { cleanup, Epmd, ErlNode } from './harness.js'
import { mib, peerBeamDir } from './fuzz/scenario.js'
import { Target, type Mem } from './target.js'

export interface LoadFigures {
  senders: number
  perSender: number
  window: number
  sent: number
  received: number
  outOfOrder: number
  missing: number
  ms: number
  /** Round trips per second (each is one message to TypeScript and one back). */
  perSecond: number
  memBefore: Mem
  memAfter: Mem
  rssBefore: number
  /** Highest RSS sampled while the load ran. */
  rssDuring: number
  rssAfter: number
  /** VmHWM of the node process. */
  rssPeak: number
  samples: number[]
}

export async function runLoad(opts: { total: number; senders?: number; window?: number; sampleMs?: number }): Promise<LoadFigures> {
  const senders = opts.senders ?? 32
  const perSender = Math.ceil(opts.total / senders)
  const window = opts.window ?? 100
  const epmd = await Epmd.start()
  const target = await Target.start({ name: `tsload${process.pid % 10000}`, cookie: 'ts_cnode_load', epmdPort: epmd.port, echo: senders, logLevel: 'warn' })
  try {
    const erl = await ErlNode.start({ name: `loader${process.pid % 10000}`, cookie: 'ts_cnode_load', epmdPort: epmd.port, codePath: [await peerBeamDir()] })
    const memBefore = await target.mem()
    const rssBefore = target.rss().now
    const samples: number[] = []
    const timer = setInterval(() => {
      if (target.alive) samples.push(target.rss().now)
    }, opts.sampleMs ?? 250)
    let printed: string
    try {
      printed = await erl.eval(`ts_peer:load('${target.name}', "ts_echo", ${senders}, ${perSender}, ${window})`, 30 * 60_000)
    } finally {
      clearInterval(timer)
    }
    if (!target.alive) throw new Error(`the node died under load: ${target.death}`)
    const get = (k: string) => Number(new RegExp(`${k} => (\\d+)`).exec(printed)?.[1] ?? NaN)
    const memAfter = await target.mem()
    const rss = target.rss()
    await erl.stop()
    const ms = get('ms')
    return {
      senders,
      perSender,
      window,
      sent: get('sent'),
      received: get('received'),
      outOfOrder: get('out_of_order'),
      missing: get('missing'),
      ms,
      perSecond: Math.round((get('received') * 1000) / Math.max(1, ms)),
      memBefore,
      memAfter,
      rssBefore,
      rssDuring: Math.max(rssBefore, ...samples),
      rssAfter: rss.now,
      rssPeak: rss.peak,
      samples,
    }
  } finally {
    await target.stop()
    await cleanup()
  }
}

export function describeLoad(f: LoadFigures): string {
  return [
    `load: ${f.senders} erl senders x ${f.perSender} messages (window ${f.window}) to ${f.senders} TypeScript echo processes and back`,
    `  sent ${f.sent}, echoed back ${f.received}, missing ${f.missing}, out of order ${f.outOfOrder}, in ${(f.ms / 1000).toFixed(1)} s (${f.perSecond} round trips/s)`,
    `  node RSS before ${mib(f.rssBefore)}, during (max sampled) ${mib(f.rssDuring)}, after ${mib(f.rssAfter)}, peak ${mib(f.rssPeak)}`,
    `  node heap after GC: before ${mib(f.memBefore.heapUsed)}, after ${mib(f.memAfter.heapUsed)}`,
  ].join('\n')
}
