// The package as a Node.js service installs it: `npm pack` (which builds), installed into a project of its
// own, imported, its types checked under --strict, and its bin run.
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { repoRoot } from './harness.js'

const run = promisify(execFile)
const dir = mkdtempSync(path.join(tmpdir(), 'ts-cnode-pack-'))
test.after(() => rmSync(dir, { recursive: true, force: true }))

test('npm pack holds the built package; installed elsewhere it imports, type-checks and runs its bin', async () => {
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repoRoot, maxBuffer: 64 << 20 })
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[]
  const files = info.files.map((f) => f.path)
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'bin/ts-cnode.js', 'erlang/src/pg_sync.erl', 'README.md'])
    assert.ok(files.includes(f), `${f} in the package`)
  assert.not.ok(files.some((f) => f.startsWith('src/') || f.startsWith('integration/') || f.endsWith('.test.js')), 'no sources or tests')

  const consumer = path.join(dir, 'consumer')
  await run('mkdir', ['-p', consumer])
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(dir, path.basename(info.filename))], {
    cwd: consumer,
    maxBuffer: 64 << 20,
  })
  const imported = await run(process.execPath, ['-e', "import('ts-cnode').then((m) => console.log(typeof m.Node, typeof m.termToBinary, typeof m.atom, typeof m.sessionCancels))"], { cwd: consumer })
  assert.is(imported.stdout.trim(), 'function function function function')

  writeFileSync(
    path.join(consumer, 'index.ts'),
    `import { Node, atom, tuple, termToBinary, binaryToTerm, type Term } from 'ts-cnode'
const node: Node = new Node({ name: 'x', cookie: 'c' })
const t: Term = tuple(atom('ok'), 1)
const back: Term = binaryToTerm(termToBinary(t))
console.log(node.name, back)
`,
  )
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const types = ['--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules', '@types')]
  await run(process.execPath, [tsc, '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', ...types, 'index.ts'], { cwd: consumer })
  // CommonJS resolution without esModuleInterop (tsc's defaults): the declarations must not need it.
  await run(process.execPath, [tsc, '--strict', '--noEmit', '--module', 'commonjs', '--target', 'es2022', ...types, 'index.ts'], { cwd: consumer })

  const help = await run(process.execPath, [path.join(consumer, 'node_modules', 'ts-cnode', 'bin', 'ts-cnode.js'), '--help'], { cwd: consumer })
  assert.match(help.stdout, /^Usage: ts-cnode/)
  assert.ok(readdirSync(path.join(consumer, 'node_modules', 'ts-cnode')).includes('dist'))
})

test.run()
