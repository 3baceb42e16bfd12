import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { parseCookie, readDefaultCookie } from './cookie.js'
import { DistConfigError } from './errors.js'

const dirs: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cookie-'))
  dirs.push(d)
  return d
}
test.after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })))

test('parseCookie follows auth:check_cookie', () => {
  assert.equal(parseCookie(Buffer.from('ABC')), { cookie: 'ABC' })
  assert.equal(parseCookie(Buffer.from('ABC\n')), { cookie: 'ABC' })
  assert.equal(parseCookie(Buffer.from('ABC\r\n  \n')), { cookie: 'ABC' })
  // Spaces before the line end are printable, so they belong to the cookie.
  assert.equal(parseCookie(Buffer.from('a b  \n')), { cookie: 'a b  ' })
  assert.equal(parseCookie(Buffer.from('ABC\nDEF')), { error: 'Bad characters in cookie' })
  assert.equal(parseCookie(Buffer.from('AB\tC')), { error: 'Bad characters in cookie' })
  assert.equal(parseCookie(Buffer.from('\n')), { error: 'Too short cookie string' })
  assert.equal(parseCookie(Buffer.from('')), { error: 'Too short cookie string' })
})

test('reads $HOME/.erlang.cookie, then the XDG one; refuses group/other access', () => {
  const home = tmp()
  const xdg = tmp()
  fs.mkdirSync(path.join(xdg, 'erlang'))
  fs.writeFileSync(path.join(xdg, 'erlang', '.erlang.cookie'), 'XDGCOOKIE\n', { mode: 0o600 })
  assert.is(readDefaultCookie({ home, xdgConfigHome: xdg }), 'XDGCOOKIE')
  fs.writeFileSync(path.join(home, '.erlang.cookie'), 'HOMECOOKIE', { mode: 0o400 })
  assert.is(readDefaultCookie({ home, xdgConfigHome: xdg }), 'HOMECOOKIE')
  fs.chmodSync(path.join(home, '.erlang.cookie'), 0o644)
  assert.throws(() => readDefaultCookie({ home, xdgConfigHome: xdg }), (e: unknown) => e instanceof DistConfigError && /owner only/.test((e as Error).message))
})

test('creates a 20-letter cookie with mode 0400 when none exists', () => {
  const home = tmp()
  const c = readDefaultCookie({ home, xdgConfigHome: tmp() })
  assert.match(c, /^[A-Z]{20}$/)
  const st = fs.statSync(path.join(home, '.erlang.cookie'))
  assert.is(st.mode & 0o777, 0o400)
  assert.is(readDefaultCookie({ home }), c)
  assert.throws(() => readDefaultCookie({ home: tmp(), create: false }), (e: unknown) => e instanceof DistConfigError)
})

test('the cookie is the one erl reads from the same file', async () => {
  let erl = true
  try {
    execFileSync('sh', ['-c', 'command -v erl'])
  } catch {
    erl = false
  }
  if (!erl) return
  const home = tmp()
  fs.writeFileSync(path.join(home, '.erlang.cookie'), 'with space \r\n\n', { mode: 0o400 })
  // -erl_epmd_port: distribution on a fixed port without EPMD, so no EPMD is needed here.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
  const out = execFileSync(
    'erl',
    ['-noshell', '-sname', `cookietest${process.pid}`, '-start_epmd', 'false', '-erl_epmd_port', String(port),
      '-eval', 'io:format("~s", [erlang:get_cookie()]), halt().'],
    { env: { ...process.env, HOME: home }, encoding: 'utf8' },
  )
  assert.is(readDefaultCookie({ home }), out)
})

test.run()
