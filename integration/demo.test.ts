// npm run demo as a user runs it: the seeds' example sessions against the node and the embedded database.
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { repoRoot, requireTool } from './harness.js'

test('the demo runs the seeds’ sessions (pg_sync, pg_async, next_perm) against the embedded database', async () => {
  await requireTool('erl')
  const env = { ...process.env }
  delete env.DATABASE_URL
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts', 'demo.ts')], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const code = await new Promise<number | null>((r) => child.on('exit', r))
  assert.is(code, 0, out)
  assert.match(out, /database postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres/)
  assert.match(out, /wait_for \( ts_cnode : node \( \) , 60 \)\n  -> pong/)
  assert.match(out, /-> \{ok,\[\["id","name"\],\["1","one"\],\["2",\[\]\]\]\}/)
  assert.match(out, /-> \{ok,"2"\}/)
  assert.match(out, /-> \{error,"ERROR:  relation \\"no_such_table\\" does not exist\\n/)
  assert.match(out, /-> \{ok,\[\["count"\],\["2"\]\]\}/)
  assert.match(out, /next_perm \( \[ 1 , 2 , 3 \] \)\n  -> \[1,3,2\]/)
  assert.match(out, /length \( All \)\n  -> 24/)
  assert.match(out, /every call above ran against the TypeScript node/)
})

test.run()
