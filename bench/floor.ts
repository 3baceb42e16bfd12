// The floor under the 1-client echo shape, with no Erlang in it: a C client (bench/cnode/pingpong.c)
// ping-pongs small messages over loopback with a bare Node.js server (bench/bare-echo.ts) and with a bare C
// server, runs interleaved. Their ratio is what a Node.js process costs per round trip on this machine
// before any distribution protocol, decoding or process scheduling: the part of ts-cnode's 1-client gap to
// the C-node that no change inside ts-cnode can remove.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { benchScript, buildPingpong, type Built } from './build.js'
import { parseRate } from './echo.js'
import { Target } from './targets.js'

const execFileP = promisify(execFile)

/** The payload each way: the size of the dist frame the small-tuple echo writes back. */
export const FLOOR_BYTES = 80

export interface Floor {
  /** Round trips per second, one entry per interleaved run. */
  node: number[]
  c: number[]
}

export async function measureFloor(timing: { reps: number; warmMs: number; measureMs: number }): Promise<Built<Floor>> {
  const pingpong = await buildPingpong()
  if (!pingpong.ok) return pingpong
  const bare = benchScript('bare-echo')
  const servers = {
    node: await Target.start('the bare Node.js echo server', process.execPath, [...bare.nodeArgs, bare.script], {}),
    c: await Target.start('the bare C echo server', pingpong.value, ['server'], {}),
  }
  try {
    const floor: Floor = { node: [], c: [] }
    for (let rep = 0; rep < timing.reps; rep++)
      for (const side of ['node', 'c'] as const) {
        const { stdout } = await execFileP(pingpong.value, [
          'client',
          servers[side].node,
          String(FLOOR_BYTES),
          String(timing.warmMs),
          String(timing.measureMs),
        ])
        floor[side].push(parseRate(stdout))
      }
    return { ok: true, value: floor }
  } finally {
    await servers.node.stop()
    await servers.c.stop()
  }
}
