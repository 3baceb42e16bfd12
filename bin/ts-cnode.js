#!/usr/bin/env node
// `npx ts-cnode`: the built CLI (dist/) when there is one, else the TypeScript source through tsx.
import { existsSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import * as path from 'node:path'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const built = path.join(root, 'dist', 'cli.js')
if (existsSync(built)) {
  const { main } = await import(built)
  process.exit(await main(process.argv.slice(2)))
} else {
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx')
  if (!existsSync(tsx)) {
    process.stderr.write(`ts-cnode: ${built} is missing and so is tsx to run the source: build it first (npm run build in ${root})\n`)
    process.exit(1)
  }
  const child = spawn(tsx, [path.join(root, 'src', 'cli.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
