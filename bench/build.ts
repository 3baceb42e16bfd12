// The bench's own build step: the erl_interface echo C-node (gcc + Debian's erlang-dev), the Erlang bench
// client, and the TypeScript node compiled to plain JavaScript (so the measured node runs without a loader).
// A missing toolchain never fails the bench: the part that needs it is skipped with the reason.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { compileErlang } from '../integration/harness.js'

const execFileP = promisify(execFile)
export const benchDir = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(benchDir, '..')
export const buildDir = path.join(benchDir, 'build')

export type Built<T> = { ok: true; value: T } | { ok: false; reason: string }

/** Whether `tool` is on PATH (a missing one skips the bench part that needs it, with the reason). */
export async function which(tool: string): Promise<boolean> {
  try {
    await execFileP('sh', ['-c', `command -v ${tool}`])
    return true
  } catch {
    return false
  }
}

/** Where erl_interface's ei.h and libei.a live (Debian's erlang-dev), or undefined. */
async function findEi(): Promise<{ include: string; lib: string } | undefined> {
  const candidates: string[] = ['/usr/lib/erlang/usr']
  try {
    const { stdout } = await execFileP('erl', ['-noshell', '-eval', 'io:format("~s", [code:root_dir()]), halt().'])
    candidates.unshift(path.join(stdout.trim(), 'usr'))
    const { stdout: ei } = await execFileP('erl', [
      '-noshell',
      '-eval',
      'io:format("~s", [code:lib_dir(erl_interface)]), halt().',
    ])
    if (!ei.includes('bad_name')) candidates.unshift(ei.trim())
  } catch {
    // no erl: fall back to the Debian paths
  }
  candidates.push('/usr')
  for (const dir of candidates) {
    const include = path.join(dir, 'include')
    const lib = path.join(dir, 'lib')
    if (existsSync(path.join(include, 'ei.h')) && existsSync(path.join(lib, 'libei.a'))) return { include, lib }
  }
  return undefined
}

/** apt-get install pkgs (apt-get update first when that fails), when running as root with apt-get; else nothing. */
async function aptInstall(pkgs: string[], why: string, log: (s: string) => void): Promise<void> {
  if (process.getuid?.() !== 0 || !(await which('apt-get'))) return
  log(`${why}: installing ${pkgs.join(' ')} with apt-get (running as root)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await execFileP('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env })
  } catch {
    await execFileP('apt-get', ['update'], { env })
    await execFileP('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env })
  }
}

/** What find() finds; when it finds nothing, find() again after aptInstall(pkgs) (a failed install is logged). */
export async function findOrInstall<T>(
  find: () => Promise<T | undefined>,
  pkgs: string[],
  why: string,
  log: (s: string) => void,
): Promise<T | undefined> {
  const found = await find()
  if (found !== undefined) return found
  try {
    await aptInstall(pkgs, why, log)
  } catch (e) {
    log(`apt-get install ${pkgs.join(' ')} failed: ${(e as Error).message.split('\n')[0]}`)
  }
  return find()
}

/**
 * tsc -p tsconfig (the repository's typescript), run from cwd. tsc exits non-zero on type errors but still
 * emits, so those are only logged: the caller looks for the output it needs.
 */
export async function tscEmit(tsconfig: string, log: (s: string) => void, cwd = repoRoot): Promise<void> {
  try {
    await execFileP(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], {
      cwd,
      maxBuffer: 64 * 1024 * 1024,
    })
  } catch (e) {
    const msg = ((e as { stdout?: string }).stdout ?? '').split('\n').filter(Boolean)
    if (msg.length > 0) log(`tsc reported ${msg.length} line(s) of type errors (emitting anyway); first: ${msg[0]}`)
  }
}

/** Compiles bench/cnode/<name>.c into bench/build/<name> with gcc (or cc) and the extra arguments. */
async function compileC(name: string, extra: string[]): Promise<Built<string>> {
  if (!(await which('gcc')) && !(await which('cc'))) return { ok: false, reason: 'no C compiler (gcc/cc) on PATH' }
  mkdirSync(buildDir, { recursive: true })
  const out = path.join(buildDir, name)
  const cc = (await which('gcc')) ? 'gcc' : 'cc'
  try {
    await execFileP(cc, ['-O2', '-Wall', '-o', out, path.join(benchDir, 'cnode', `${name}.c`), ...extra])
  } catch (e) {
    return { ok: false, reason: `compiling ${name}.c failed: ${(e as { stderr?: string }).stderr ?? String(e)}` }
  }
  return { ok: true, value: out }
}

/** Builds bench/build/echo_cnode from bench/cnode/echo_cnode.c against libei. */
export async function buildCnode(log: (s: string) => void = () => {}): Promise<Built<string>> {
  if (!(await which('gcc')) && !(await which('cc'))) return { ok: false, reason: 'no C compiler (gcc/cc) on PATH' }
  const ei = await findOrInstall(findEi, ['erlang-dev'], 'erl_interface (ei.h, libei.a) is missing', log)
  if (ei === undefined) {
    return {
      ok: false,
      reason:
        'erl_interface headers/library (ei.h, libei.a) not found: install Debian package erlang-dev ' +
        '(the bench does it itself with apt-get when run as root)',
    }
  }
  return compileC('echo_cnode', ['-D_REENTRANT', `-I${ei.include}`, `-L${ei.lib}`, '-lei', '-lpthread'])
}

/** Builds bench/build/pingpong (bench/cnode/pingpong.c: the bare-socket floor's client and C server). */
export function buildPingpong(): Promise<Built<string>> {
  return compileC('pingpong', [])
}

/** Compiles bench/erl/*.erl into bench/build/ebin. */
export async function buildErlang(): Promise<Built<string>> {
  if (!(await which('erlc'))) return { ok: false, reason: 'erlc not found: install Erlang/OTP (erlang-nox)' }
  const ebin = path.join(buildDir, 'ebin')
  mkdirSync(ebin, { recursive: true })
  return { ok: true, value: await compileErlang([path.join(benchDir, 'erl', 'bench_client.erl')], ebin) }
}

/**
 * Compiles src/, bench/ts-echo.ts and bench/bare-echo.ts with tsc into bench/build/js (type errors elsewhere
 * in the tree do not stop the emit). Returns the command that runs the ts echo node (see benchScript).
 */
export async function buildTsNode(log: (s: string) => void = () => {}): Promise<{ script: string; nodeArgs: string[] }> {
  await tscEmit(path.join(benchDir, 'tsconfig.json'), log)
  const run = benchScript('ts-echo')
  if (run.nodeArgs.length > 0) log('tsc produced no bench/build/js/bench/ts-echo.js: running the ts node through tsx instead')
  return run
}

/** How to run bench/<name>.ts: plain `node` on tsc's output when buildTsNode made it, else `node --import tsx` on the source. */
export function benchScript(name: string): { script: string; nodeArgs: string[] } {
  const compiled = path.join(buildDir, 'js', 'bench', `${name}.js`)
  if (existsSync(compiled)) return { script: compiled, nodeArgs: [] }
  return { script: path.join(benchDir, `${name}.ts`), nodeArgs: ['--import', 'tsx'] }
}
