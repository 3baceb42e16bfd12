import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseConninfo, resolveConninfo } from './conninfo.js'
import { ConninfoError } from './errors.js'

// Expected values and messages are what libpq 15's PQconninfoParse / PQconnectdb report for the same
// strings (integration/drivers-libpq.test.ts checks a corpus against the real libpq).
const parsed = (s: string) => Object.fromEntries(parseConninfo(s))

function errorOf(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    assert.instance(e, ConninfoError)
    return (e as Error).message
  }
  throw new Error('expected a ConninfoError')
}

test('keyword/value: blanks, quoting and backslash escapes as libpq', () => {
  assert.equal(parsed("host=a dbname='x y' user=\\'q"), { host: 'a', dbname: 'x y', user: "'q" })
  assert.equal(parsed(" host = 'a b\\'c' "), { host: "a b'c" })
  assert.equal(parsed('host=a\\ b port=\\'), { host: 'a b', port: '' })
  assert.equal(parsed('dbname=a dbname=b'), { dbname: 'b' })
  assert.equal(parsed("password='' user=u"), { password: '', user: 'u' })
  assert.equal(parsed(''), {})
})

test('keyword/value errors carry libpq text', () => {
  assert.is(errorOf(() => parseConninfo('host')), 'missing "=" after "host" in connection info string\n')
  assert.is(errorOf(() => parseConninfo('host=a port=1 x')), 'missing "=" after "x" in connection info string\n')
  assert.is(errorOf(() => parseConninfo('foo=bar')), 'invalid connection option "foo"\n')
  assert.is(errorOf(() => parseConninfo('a=b =c')), 'invalid connection option "a"\n')
  assert.is(errorOf(() => parseConninfo("host='abc")), 'unterminated quoted string in connection info string\n')
  assert.is(errorOf(() => parseConninfo('POSTGRES://h')), 'missing "=" after "POSTGRES://h" in connection info string\n')
})

test('requiressl maps to sslmode', () => {
  assert.equal(parsed('host=a requiressl=0'), { host: 'a', sslmode: 'prefer' })
  assert.equal(parsed('requiressl=1'), { sslmode: 'require' })
})

test('URIs: credentials, several hosts, IPv6, percent-decoding, query parameters', () => {
  assert.equal(parsed('postgres://u:p@h1:5,h2/db?application_name=z&ssl=true'), {
    user: 'u', password: 'p', host: 'h1,h2', port: '5,', dbname: 'db', application_name: 'z', sslmode: 'require',
  })
  assert.equal(parsed('postgresql://'), {})
  assert.equal(parsed('postgres://[::1]:5/d'), { host: '::1', port: '5', dbname: 'd' })
  assert.equal(parsed('postgres://h/d?host=%2Fvar%2Frun'), { host: '/var/run', dbname: 'd' })
  assert.equal(parsed('postgres://u%40x:p%3Aw@h:1,h2:2/db%20x?application_name=a%20b&requiressl=1'), {
    user: 'u@x', password: 'p:w', host: 'h,h2', port: '1,2', dbname: 'db x', application_name: 'a b', sslmode: 'require',
  })
  assert.equal(parsed('postgres://:5/d'), { port: '5', dbname: 'd' })
  assert.equal(parsed('postgres://@h'), { host: 'h' })
  assert.equal(parsed('postgres://h:/d'), { host: 'h', dbname: 'd' })
  assert.equal(parsed('postgresql:///d?host=/tmp'), { host: '/tmp', dbname: 'd' })
  assert.equal(parsed('postgres://h/?dbname=x'), { host: 'h', dbname: 'x' })
  assert.equal(parsed('postgres://h,/d'), { host: 'h,', port: ',', dbname: 'd' })
  assert.equal(parsed('postgres://u:@h'), { user: 'u', host: 'h' })
  assert.equal(parsed('postgres://h?sslmode=require'), { host: 'h', sslmode: 'require' })
  assert.equal(parsed('postgres://h/d%C3%A9'), { host: 'h', dbname: 'dé' })
})

test('URI errors carry libpq text', () => {
  assert.is(
    errorOf(() => parseConninfo('postgres://[::1')),
    'end of string reached when looking for matching "]" in IPv6 host address in URI: "postgres://[::1"\n',
  )
  assert.is(errorOf(() => parseConninfo('postgres://[]/x')), 'IPv6 host address may not be empty in URI: "postgres://[]/x"\n')
  assert.is(
    errorOf(() => parseConninfo('postgres://[::1]x')),
    'unexpected character "x" at position 17 in URI (expected ":" or "/"): "postgres://[::1]x"\n',
  )
  assert.is(errorOf(() => parseConninfo('postgres://h/d?a')), 'missing key/value separator "=" in URI query parameter: "a"\n')
  assert.is(errorOf(() => parseConninfo('postgres://h/d?a=b=c')), 'extra key/value separator "=" in URI query parameter: "a"\n')
  assert.is(errorOf(() => parseConninfo('postgres://h/d?foo=1')), 'invalid URI query parameter: "foo"\n')
  assert.is(errorOf(() => parseConninfo('postgres://h/d?ssl=false')), 'invalid URI query parameter: "ssl"\n')
  assert.is(errorOf(() => parseConninfo('postgres://h/d?x=%zz')), 'invalid percent-encoded token: "%zz"\n')
  assert.is(errorOf(() => parseConninfo('postgres://h/d%00')), 'forbidden value %00 in percent-encoded value: "d%00"\n')
  assert.is(errorOf(() => parseConninfo('postgres://h/a/b?x')), 'missing key/value separator "=" in URI query parameter: "x"\n')
})

const env = {} as NodeJS.ProcessEnv
const resolve = (s: string, e: NodeJS.ProcessEnv = env) => resolveConninfo(s, { env: e, osUser: 'osuser' })

test('defaults: socket directory, port 5432, OS user, dbname = user, sslmode prefer', () => {
  const r = resolve('')
  assert.equal(r.targets, [{ host: '/var/run/postgresql', port: 5432, socketDir: '/var/run/postgresql' }])
  assert.is(r.user, 'osuser')
  assert.is(r.dbname, 'osuser')
  assert.is(r.sslmode, 'prefer')
  assert.is(r.connectTimeout, 0)
  assert.is(r.keepalives, true)
})

test('environment variables fill what the string leaves out, the string wins', () => {
  const e = { PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'envuser', PGDATABASE: 'envdb', PGAPPNAME: 'app' } as NodeJS.ProcessEnv
  const r = resolve('user=given', e)
  assert.equal(r.targets, [{ host: 'envhost', port: 6000 }])
  assert.is(r.user, 'given')
  assert.is(r.dbname, 'envdb')
  assert.is(r.applicationName, 'app')
  assert.is(resolve('', { PGREQUIRESSL: '1' } as NodeJS.ProcessEnv).sslmode, 'require')
})

test('several hosts with their ports, hostaddr, socket directories', () => {
  assert.equal(resolve('host=a,b port=1,2').targets, [{ host: 'a', port: 1 }, { host: 'b', port: 2 }])
  assert.equal(resolve('host=a,b port=7').targets, [{ host: 'a', port: 7 }, { host: 'b', port: 7 }])
  assert.equal(resolve('host=a,b port=7,').targets, [{ host: 'a', port: 7 }, { host: 'b', port: 5432 }])
  assert.equal(resolve('hostaddr=127.0.0.1').targets, [{ host: '', hostaddr: '127.0.0.1', port: 5432 }])
  assert.equal(resolve('host=db hostaddr=10.0.0.1').targets, [{ host: 'db', hostaddr: '10.0.0.1', port: 5432 }])
  assert.equal(resolve('host=/tmp port=5433').targets, [{ host: '/tmp', port: 5433, socketDir: '/tmp' }])
  assert.equal(resolve("host=127.0.0.1 port=' 5432'").targets, [{ host: '127.0.0.1', port: 5432 }])
})

test('validation errors carry libpq text', () => {
  assert.is(errorOf(() => resolve('host=127.0.0.1 port=abc')), 'invalid integer value "abc" for connection option "port"\n')
  assert.is(errorOf(() => resolve('host=127.0.0.1 port=5432x')), 'invalid integer value "5432x" for connection option "port"\n')
  assert.is(errorOf(() => resolve('host=a,b,c port=1,2')), 'could not match 2 port numbers to 3 hosts\n')
  assert.is(errorOf(() => resolve('host=127.0.0.1 port=5432,')), 'could not match 2 port numbers to 1 hosts\n')
  assert.is(errorOf(() => resolve('host=127.0.0.1 port=99999')), 'invalid port number: "99999"\n')
  assert.is(errorOf(() => resolve('host=127.0.0.1 port=-1')), 'invalid port number: "-1"\n')
  assert.is(errorOf(() => resolve('sslmode=foo')), 'invalid sslmode value: "foo"\n')
  assert.is(errorOf(() => resolve('gssencmode=x')), 'invalid gssencmode value: "x"\n')
  assert.is(errorOf(() => resolve('channel_binding=x')), 'invalid channel_binding value: "x"\n')
  assert.is(errorOf(() => resolve('target_session_attrs=x')), 'invalid target_session_attrs value: "x"\n')
  assert.is(resolve('connect_timeout=x').attemptError, 'invalid integer value "x" for connection option "connect_timeout"\n')
  assert.is(resolve('keepalives=y').attemptError, 'invalid integer value "y" for connection option "keepalives"\n')
})

test('what the pg package cannot do is refused plainly, not ignored', () => {
  assert.match(errorOf(() => resolve('target_session_attrs=read-write')), /not supported/)
  assert.match(errorOf(() => resolve('client_encoding=LATIN1')), /not supported/)
  assert.match(errorOf(() => resolve('service=foo')), /^definition of service "foo" not found/)
  assert.is(resolve('client_encoding=UTF8').user, 'osuser')
})

test('connect_timeout: 1 second is raised to 2, as libpq does', () => {
  assert.is(resolve('connect_timeout=1').connectTimeout, 2)
  assert.is(resolve('connect_timeout=10').connectTimeout, 10)
  assert.is(resolve('connect_timeout=0').connectTimeout, 0)
})

test.run()
