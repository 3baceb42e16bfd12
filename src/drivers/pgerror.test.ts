import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connectFailure, formatServerError, hostIdentity, lookupFailure, reportErrorPosition } from './pgerror.js'

// Expected texts are PQerrorMessage outputs of libpq 15 for the same server errors.

test('a plain error and one with a cursor position', () => {
  assert.is(formatServerError({ severity: 'ERROR', message: 'division by zero' }, 'select 1/0'), 'ERROR:  division by zero\n')
  assert.is(
    formatServerError({ severity: 'ERROR', message: 'relation "nosuch" does not exist', position: '15' }, 'select * from nosuch'),
    'ERROR:  relation "nosuch" does not exist\nLINE 1: select * from nosuch\n                      ^\n',
  )
  assert.is(
    formatServerError({ severity: 'ERROR', message: 'syntax error at or near "selec"', position: '1' }, 'selec 1'),
    'ERROR:  syntax error at or near "selec"\nLINE 1: selec 1\n        ^\n',
  )
  assert.is(
    formatServerError({ severity: 'ERROR', message: 'syntax error at end of input', position: '11' }, 'select 1 +'),
    'ERROR:  syntax error at end of input\nLINE 1: select 1 +\n                  ^\n',
  )
})

test('without the query text the position is appended as "at character N"', () => {
  assert.is(formatServerError({ severity: 'ERROR', message: 'x', position: '3' }), 'ERROR:  x at character 3\n')
})

test('DETAIL, HINT, QUERY and CONTEXT lines', () => {
  assert.is(
    formatServerError({ severity: 'ERROR', message: 'boom', detail: 'd', hint: 'h', where: 'PL/pgSQL function inline_code_block line 1 at RAISE' }, 'do ...'),
    'ERROR:  boom\nDETAIL:  d\nHINT:  h\nCONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n',
  )
  assert.is(
    formatServerError(
      { severity: 'ERROR', message: 'syntax error at or near "selec"', internalPosition: '1', internalQuery: 'selec 1', where: 'PL/pgSQL function inline_code_block line 1 at EXECUTE' },
      "do $$ begin execute 'selec 1'; end $$",
    ),
    'ERROR:  syntax error at or near "selec"\nLINE 1: selec 1\n        ^\nQUERY:  selec 1\nCONTEXT:  PL/pgSQL function inline_code_block line 1 at EXECUTE\n',
  )
})

test('the cursor line: second line, tabs as spaces, multibyte characters counted as characters', () => {
  const q = "select\n  1, 'é',\tnosuchcol from pg_class"
  assert.is(reportErrorPosition(q, q.indexOf('nosuchcol') + 1), "LINE 2:   1, 'é', nosuchcol from pg_class\n                  ^\n")
})

test('long lines are cut to 60 columns around the cursor, wide characters count twice', () => {
  const a = "select 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' || nosuch"
  assert.is(
    reportErrorPosition(a, a.indexOf('nosuch') + 1),
    "LINE 1: ...aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' || nosuch\n" +
      '                                                                 ^\n',
  )
  const j =
    "select 'ありがとうございますありがとうございますありがとうございます' || nosuch || 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
  assert.is(
    reportErrorPosition(j, Array.from(j).indexOf('n') + 1),
    "LINE 1: ...ますありがとうございますありがとうございます' || nosuch || ...\n" +
      '                                                            ^\n',
  )
})

test('positions beyond the query print nothing', () => {
  assert.is(reportErrorPosition('select', 99), '')
  assert.is(reportErrorPosition('select', 0), '')
})

test('connection failure texts', () => {
  assert.is(hostIdentity({ displayedHost: '127.0.0.1', address: '127.0.0.1', port: 5999 }), 'connection to server at "127.0.0.1", port 5999 failed: ')
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5999'), { code: 'ECONNREFUSED' })
  assert.is(
    connectFailure({ displayedHost: 'localhost', address: '127.0.0.1', port: 5999 }, refused),
    'connection to server at "localhost" (127.0.0.1), port 5999 failed: Connection refused\n' +
      '\tIs the server running on that host and accepting TCP/IP connections?\n',
  )
  const noent = Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' })
  assert.is(
    connectFailure({ displayedHost: '/var/run/postgresql', port: 5999, socketPath: '/var/run/postgresql/.s.PGSQL.5999' }, noent),
    'connection to server on socket "/var/run/postgresql/.s.PGSQL.5999" failed: No such file or directory\n' +
      '\tIs the server running locally and accepting connections on that socket?\n',
  )
  const nf = Object.assign(new Error('getaddrinfo ENOTFOUND no.such.host.invalid'), { code: 'ENOTFOUND' })
  assert.is(lookupFailure('no.such.host.invalid', nf), 'could not translate host name "no.such.host.invalid" to address: Name or service not known\n')
})

test.run()
