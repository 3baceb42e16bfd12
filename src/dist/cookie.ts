// The magic cookie, read as kernel's auth.erl reads it (init_cookie / read_cookie / check_cookie):
//   1. $HOME/.erlang.cookie, else 2. filename:basedir(user_config, "erlang")/.erlang.cookie
//      ($XDG_CONFIG_HOME/erlang, default ~/.config/erlang); if neither exists, a new random cookie of
//      20 capital letters is written to $HOME/.erlang.cookie with mode 0400.
//   The file must be a regular file accessible by its owner only. Its characters from the start that are
//   printable ASCII (space to '~') form the cookie; after them only \n, \r and spaces may follow.

import { randomInt } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { DistConfigError } from './errors.js'

export interface CookieLocation {
  /** Default: process.env.HOME, else os.homedir(). */
  home?: string
  /** Default: process.env.XDG_CONFIG_HOME, else `${home}/.config`. */
  xdgConfigHome?: string
  /** Create $HOME/.erlang.cookie when no cookie file exists, as erl does. Default true. */
  create?: boolean
}

/** check_cookie/2: the cookie in a file's bytes, or an error message as auth.erl words it. */
export function parseCookie(bytes: Buffer): { cookie: string } | { error: string } {
  let i = 0
  while (i < bytes.length && bytes[i] >= 0x20 && bytes[i] <= 0x7e) i++
  const cookie = bytes.toString('latin1', 0, i)
  for (let j = i; j < bytes.length; j++) {
    const c = bytes[j]
    if (c !== 0x0a && c !== 0x0d && c !== 0x20) return { error: 'Bad characters in cookie' }
  }
  if (cookie.length === 0) return { error: 'Too short cookie string' }
  return { cookie }
}

function readCookieFile(file: string): string | undefined {
  let st: fs.Stats
  try {
    st = fs.statSync(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new DistConfigError(`Error when reading ${file}: ${(e as NodeJS.ErrnoException).code}`, { cause: e })
  }
  if (!st.isFile()) throw new DistConfigError(`Cookie file ${file} is not a regular file`)
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0)
    throw new DistConfigError(`Cookie file ${file} must be accessible by owner only`)
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (e) {
    throw new DistConfigError(`Error when reading ${file}: ${(e as NodeJS.ErrnoException).code}`, { cause: e })
  }
  const r = parseCookie(bytes)
  if ('error' in r) throw new DistConfigError(`${r.error} (${file})`)
  return r.cookie
}

/** A new cookie as auth:create_cookie/1 makes one: 20 letters A-Z. */
export function randomCookie(): string {
  let s = ''
  for (let i = 0; i < 20; i++) s += String.fromCharCode(65 + randomInt(26))
  return s
}

/** The cookie erl would use with no -setcookie: see the file comment. Throws DistConfigError. */
export function readDefaultCookie(loc: CookieLocation = {}): string {
  const home = loc.home ?? process.env.HOME ?? os.homedir()
  const homeFile = path.join(home, '.erlang.cookie')
  const fromHome = readCookieFile(homeFile)
  if (fromHome !== undefined) return fromHome
  const xdg = loc.xdgConfigHome ?? process.env.XDG_CONFIG_HOME ?? path.join(home, '.config')
  const fromXdg = readCookieFile(path.join(xdg, 'erlang', '.erlang.cookie'))
  if (fromXdg !== undefined) return fromXdg
  if (loc.create === false) throw new DistConfigError(`no cookie file at ${homeFile}`)
  const cookie = randomCookie()
  try {
    fs.writeFileSync(homeFile, cookie, { mode: 0o400, flag: 'wx' })
  } catch (e) {
    // Another process may have created it meanwhile: read that one.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const c = readCookieFile(homeFile)
      if (c !== undefined) return c
    }
    throw new DistConfigError(`Failed to create cookie file '${homeFile}': ${(e as NodeJS.ErrnoException).code}`, {
      cause: e,
    })
  }
  return cookie
}
