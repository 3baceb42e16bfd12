// npm run demo: starts the node with the drivers, then a real erl that runs the seeds' example sessions
// (erlang/examples/seed_demo.erl) against it and prints what each call returned.
// The database: DATABASE_URL when set, else the embedded PGlite. EPMD: a private port (embedded EPMD).
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { compileErlang, freePort, repoRoot } from '../integration/harness.js'
import { ensureErlangModules, parseArgs, run } from '../src/cli.js'
import { consoleLogger } from '../src/logger.js'

const log = consoleLogger((process.env.LOG_LEVEL as 'info') ?? 'warn')
const epmdPort = await freePort()
const cookie = 'ts_cnode_demo'
const opts = parseArgs(['-sname', 'tsnode', '-setcookie', cookie, '--epmd-port', String(epmdPort), '--db', process.env.DATABASE_URL ?? 'embedded'], {})
const ebin = ensureErlangModules(log)
if (!ebin) throw new Error('erlang/src could not be compiled: is erlc installed?')
// The harness's temp dir is removed at exit.
const examples = await compileErlang([path.join(repoRoot, 'erlang', 'examples', 'seed_demo.erl')])

const running = await run(opts, log)
console.log(`demo: node ${running.node.name.name} is up; database ${running.dbUrl}`)
const erl = spawn(
  'erl',
  ['-noshell', '-sname', `demo${process.pid}`, '-setcookie', cookie, '-start_epmd', 'false', '-pa', ebin, '-pa', examples,
   '-eval', `ok = seed_demo:run(${JSON.stringify(running.dbUrl)}), halt().`],
  { stdio: 'inherit', env: { ...process.env, ERL_EPMD_PORT: String(epmdPort), TS_CNODE_NODE: running.node.name.name } },
)
const code = await new Promise<number>((r) => erl.on('exit', (c) => r(c ?? 1)))
await running.stop()
console.log(code === 0 ? '\ndemo: every call above ran against the TypeScript node.' : `\ndemo: erl exited with ${code}`)
process.exit(code)
