// The hostile-input scenario shared by integration/hostile.test.ts and scripts/fuzz-dist.ts: a target node
// in its own process (with its embedded EPMD), a real erl peer that keeps pinging it and exchanging messages
// with its echo process, and the fuzzer in between.
import { existsSync } from 'node:fs'
import * as path from 'node:path'
import { portPlease } from '../../src/epmd/client.js'
import { compileErlang, ErlNode, freePort, repoRoot } from '../harness.js'
import { Target, type Mem, type TargetConfig } from '../target.js'
import type { FuzzTarget } from './dist-fuzz.js'

export const HOSTILE_COOKIE = 'ts_cnode_hostile_cookie'

export interface ChatterStats {
  ok: number
  pang: number
  lost: number
  nodedown: number
}

export interface Scene {
  target: Target
  fuzz: FuzzTarget
  erl: ErlNode
  epmdPort: number
  /** The chatter's pid as erl prints it. */
  chatter: string
  mem0: Mem
  chatterStats(): Promise<ChatterStats>
  close(): Promise<void>
}

let peerBeams: { dir: Promise<string>; path?: string } | undefined
/** integration/erl/ts_peer.erl compiled (again after the harness's cleanup() removed the temp dir). */
export async function peerBeamDir(): Promise<string> {
  if (peerBeams?.path !== undefined && !existsSync(peerBeams.path)) peerBeams = undefined
  if (!peerBeams) {
    const entry: { dir: Promise<string>; path?: string } = { dir: compileErlang([path.join(repoRoot, 'integration', 'erl', 'ts_peer.erl')]) }
    entry.dir.then((d) => (entry.path = d), () => (peerBeams = undefined))
    peerBeams = entry
  }
  return peerBeams.dir
}

function parseStats(printed: string): ChatterStats {
  const get = (k: string) => Number(new RegExp(`${k} => (\\d+)`).exec(printed)?.[1] ?? NaN)
  return { ok: get('ok'), pang: get('pang'), lost: get('lost'), nodedown: get('nodedown') }
}

/** Starts the target (embedded EPMD on a fresh port), the erl peer and its chatter. */
export async function startScene(cfg: Partial<TargetConfig> = {}, chatterIntervalMs = 20): Promise<Scene> {
  const epmdPort = await freePort()
  const target = await Target.start({
    name: `tshostile${process.pid % 10000}`,
    cookie: HOSTILE_COOKIE,
    epmdPort,
    echo: 1,
    setupTime: 2000,
    maxFrameSize: 8 * 1024 * 1024,
    // Fragments offered, so the fuzz's fragmented messages are what a peer may send (reassembly is fuzzed).
    fragments: true,
    logLevel: 'info',
    ...cfg,
  })
  const alive = target.name.split('@')[0]
  const port = (await portPlease(alive, '127.0.0.1', epmdPort))?.port
  if (port === undefined) throw new Error(`target ${target.name} is not registered with its embedded EPMD`)
  const erl = await ErlNode.start({
    name: `hpeer${process.pid % 10000}`,
    cookie: HOSTILE_COOKIE,
    epmdPort,
    codePath: [await peerBeamDir()],
  })
  const chatter = await erl.eval(`ts_peer:start_chatter('${target.name}', ts_echo_01, ${chatterIntervalMs})`)
  const mem0 = await target.mem()
  return {
    target,
    fuzz: { host: '127.0.0.1', port, epmdPort, name: target.name, cookie: HOSTILE_COOKIE, creation: target.creation, sinkId: target.sinkId },
    erl,
    epmdPort,
    chatter,
    mem0,
    async chatterStats() {
      return parseStats(await erl.eval(`ts_peer:chatter_stats(list_to_pid("${chatter}"))`))
    },
    async close() {
      await erl.stop()
      await target.stop()
    },
  }
}

/** Bytes as MiB with one decimal, for reports (also integration/load.ts and scripts/soak.ts). */
export const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`
