import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EpmdArgumentError, EpmdError, EpmdProtocolError } from './errors.js'
import {
  decodeRequest,
  encodeReply,
  encodeRequest,
  MAX_REQUEST_LENGTH,
  NODE_TYPE_HIDDEN,
  NODE_TYPE_NORMAL,
  parseReply,
  parseRequest,
  type EpmdReply,
  type EpmdRequest,
  type EpmdRequestKind,
} from './messages.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

function throwsCode(fn: () => unknown, cls: abstract new (...a: never[]) => Error, code: string) {
  try {
    fn()
  } catch (e) {
    assert.instance(e, cls)
    assert.instance(e, EpmdError)
    assert.is((e as EpmdError).code, code)
    return
  }
  assert.unreachable(`expected ${code}`)
}

test('ALIVE2_REQ encodes byte for byte as the spec lays it out', () => {
  const bytes = encodeRequest({
    kind: 'ALIVE2_REQ',
    port: 0x1234,
    nodeType: NODE_TYPE_HIDDEN,
    protocol: 0,
    highestVersion: 6,
    lowestVersion: 5,
    name: 'ab',
    extra: Buffer.of(0xee),
  })
  // Len:16 = 16; 120, Port:16, 72, 0, 6:16, 5:16, Nlen:16=2, "ab", Elen:16=1, 0xee
  assert.equal(bytes, hex('0010 78 1234 48 00 0006 0005 0002 6162 0001 ee'))
})

test('PORT_PLEASE2_REQ, NAMES_REQ, DUMP_REQ, KILL_REQ, STOP_REQ encode with their length prefix', () => {
  assert.equal(encodeRequest({ kind: 'PORT_PLEASE2_REQ', name: 'foo' }), hex('0004 7a 666f6f'))
  assert.equal(encodeRequest({ kind: 'NAMES_REQ' }), hex('0001 6e'))
  assert.equal(encodeRequest({ kind: 'DUMP_REQ' }), hex('0001 64'))
  assert.equal(encodeRequest({ kind: 'KILL_REQ' }), hex('0001 6b'))
  assert.equal(encodeRequest({ kind: 'STOP_REQ', name: 'x' }), hex('0002 73 78'))
})

const requests: EpmdRequest[] = [
  {
    kind: 'ALIVE2_REQ',
    port: 65535,
    nodeType: NODE_TYPE_NORMAL,
    protocol: 0,
    highestVersion: 6,
    lowestVersion: 6,
    name: 'nöde_ü€😀',
    extra: Buffer.alloc(0),
  },
  {
    kind: 'ALIVE2_REQ',
    port: 1,
    nodeType: NODE_TYPE_HIDDEN,
    protocol: 0,
    highestVersion: 5,
    lowestVersion: 5,
    name: 'x'.repeat(255),
    extra: Buffer.alloc(1020, 7),
  },
  { kind: 'PORT_PLEASE2_REQ', name: 'a' },
  { kind: 'PORT_PLEASE2_REQ', name: 'ünïcode' },
  { kind: 'NAMES_REQ' },
  { kind: 'DUMP_REQ' },
  { kind: 'KILL_REQ' },
  { kind: 'STOP_REQ', name: 'gone' },
]

test('every request decodes back to itself, and parses only when its last byte arrives', () => {
  for (const req of requests) {
    const bytes = encodeRequest(req)
    assert.equal(decodeRequest(bytes.subarray(2)), req)
    for (let cut = 0; cut < bytes.length; cut++) {
      assert.is(parseRequest(bytes.subarray(0, cut)), undefined, `${req.kind} cut at ${cut}`)
    }
    const parsed = parseRequest(Buffer.concat([bytes, Buffer.of(1, 2, 3)]))
    assert.ok(parsed)
    assert.equal(parsed.request, req)
    assert.is(parsed.consumed, bytes.length)
  }
})

test('a trailing NUL after a PORT_PLEASE2_REQ name is skipped, as epmd does', () => {
  assert.equal(decodeRequest(hex('7a 666f6f 00')), { kind: 'PORT_PLEASE2_REQ', name: 'foo' })
})

test('oversized and zero request lengths are refused before the body arrives', () => {
  const big = Buffer.alloc(2)
  big.writeUInt16BE(MAX_REQUEST_LENGTH + 1)
  throwsCode(() => parseRequest(big), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
  throwsCode(() => parseRequest(hex('0000')), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
  throwsCode(() => parseRequest(hex('0005 7800'), 4), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
})

test('malformed request bodies throw EpmdProtocolError with the offset', () => {
  const cases: Array<[string, Buffer]> = [
    ['unknown tag', hex('01')],
    ['ALIVE2 too short', hex('78 1234 48 00 0006 0005 0001')],
    ['ALIVE2 empty name', hex('78 1234 48 00 0006 0005 0000 0000 00')],
    ['ALIVE2 name overruns', hex('78 1234 48 00 0006 0005 0009 61 0000')],
    ['ALIVE2 extra overruns', hex('78 1234 48 00 0006 0005 0001 61 0005 01')],
    ['ALIVE2 NUL in name', hex('78 1234 48 00 0006 0005 0002 6100 0000')],
    ['ALIVE2 bad UTF-8', hex('78 1234 48 00 0006 0005 0001 ff 0000')],
    ['PORT_PLEASE2 no name', hex('7a')],
    ['PORT_PLEASE2 only NUL', hex('7a 00')],
    ['PORT_PLEASE2 bad UTF-8', hex('7a c3')],
    ['STOP no name', hex('73')],
  ]
  for (const [what, body] of cases) {
    try {
      decodeRequest(body, 2)
      assert.unreachable(what)
    } catch (e) {
      assert.instance(e, EpmdProtocolError, what)
      assert.ok((e as EpmdProtocolError).offset >= 2, what)
    }
  }
  throwsCode(() => decodeRequest(Buffer.alloc(0)), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
})

test('names EPMD would refuse are refused when encoding, with EpmdArgumentError', () => {
  const bad: unknown[] = ['', 'a\0b', 'x'.repeat(256), '\uD800x', 42]
  for (const name of bad) {
    throwsCode(
      () => encodeRequest({ kind: 'PORT_PLEASE2_REQ', name: name as string }),
      EpmdArgumentError,
      'ERR_EPMD_ARGUMENT',
    )
  }
  const base = { kind: 'ALIVE2_REQ', nodeType: 72, protocol: 0, highestVersion: 6, lowestVersion: 6, name: 'a' } as const
  throwsCode(() => encodeRequest({ ...base, port: 70000, extra: Buffer.alloc(0) }), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
  throwsCode(() => encodeRequest({ ...base, port: -1, extra: Buffer.alloc(0) }), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
  throwsCode(() => encodeRequest({ ...base, port: 1, extra: Buffer.alloc(1021) }), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
  throwsCode(() => encodeRequest({ ...base, port: 1, nodeType: 256, extra: Buffer.alloc(0) }), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
})

const replies: Array<[EpmdRequestKind, EpmdReply, string?]> = [
  ['ALIVE2_REQ', { kind: 'ALIVE2_X_RESP', result: 0, creation: 0xdeadbeef }, '76 00 deadbeef'],
  ['ALIVE2_REQ', { kind: 'ALIVE2_X_RESP', result: 1, creation: 99 }, '76 01 00000063'],
  ['ALIVE2_REQ', { kind: 'ALIVE2_RESP', result: 0, creation: 3 }, '79 00 0003'],
  ['PORT_PLEASE2_REQ', { kind: 'PORT2_RESP', result: 1, node: undefined }, '77 01'],
  [
    'PORT_PLEASE2_REQ',
    {
      kind: 'PORT2_RESP',
      result: 0,
      node: {
        port: 0xabcd,
        nodeType: 77,
        protocol: 0,
        highestVersion: 6,
        lowestVersion: 5,
        name: 'ab',
        extra: Buffer.of(1, 2),
      },
    },
    '77 00 abcd 4d 00 0006 0005 0002 6162 0002 0102',
  ],
  [
    'PORT_PLEASE2_REQ',
    {
      kind: 'PORT2_RESP',
      result: 0,
      node: { port: 1, nodeType: 72, protocol: 0, highestVersion: 6, lowestVersion: 6, name: 'ñ', extra: Buffer.alloc(0) },
    },
  ],
  ['NAMES_REQ', { kind: 'NAMES_RESP', epmdPort: 4369, names: [] }, '00001111'],
  [
    'NAMES_REQ',
    {
      kind: 'NAMES_RESP',
      epmdPort: 4369,
      names: [
        { name: 'a', port: 40000 },
        { name: 'nöde b', port: 1 },
      ],
    },
  ],
  [
    'DUMP_REQ',
    {
      kind: 'DUMP_RESP',
      epmdPort: 5555,
      nodes: [
        { state: 'active', name: 'a', port: 40000, fd: 7 },
        { state: 'old', name: 'b', port: 123, fd: -1 },
      ],
    },
  ],
  ['KILL_REQ', { kind: 'KILL_RESP', ok: true }, '4f4b'],
  ['KILL_REQ', { kind: 'KILL_RESP', ok: false }, '4e4f'],
  ['STOP_REQ', { kind: 'STOP_OK_RESP' }],
  ['STOP_REQ', { kind: 'STOP_NOTOK_RESP' }],
]

test('every reply round-trips and parses only once complete, split at every offset', () => {
  for (const [req, reply, fixture] of replies) {
    const bytes = encodeReply(reply)
    if (fixture) assert.equal(bytes, hex(fixture), reply.kind)
    const endsAtClose = req === 'NAMES_REQ' || req === 'DUMP_REQ'
    for (let cut = 0; cut < bytes.length; cut++) {
      assert.is(parseReply(req, bytes.subarray(0, cut)), undefined, `${reply.kind} cut at ${cut}`)
      if (endsAtClose && cut < 4) assert.is(parseReply(req, bytes.subarray(0, cut), true), undefined)
    }
    if (endsAtClose) assert.is(parseReply(req, bytes, false), undefined, 'NAMES/DUMP end only at close')
    const parsed = parseReply(req, bytes, true)
    assert.ok(parsed, reply.kind)
    assert.equal(parsed.reply, reply)
    assert.is(parsed.consumed, bytes.length)
  }
})

test('fixed-size replies report what they consumed when more bytes follow', () => {
  const parsed = parseReply('ALIVE2_REQ', hex('76 00 00000005 ffff'))
  assert.equal(parsed, { reply: { kind: 'ALIVE2_X_RESP', result: 0, creation: 5 }, consumed: 6 })
  const port = parseReply('PORT_PLEASE2_REQ', hex('77 00 abcd 4d 00 0006 0005 0001 61 0000 99'))
  assert.is(port?.consumed, 15)
  // epmd answers a STOP_REQ for an unknown name with "NOEXIST" and then "STOPPED".
  assert.equal(parseReply('STOP_REQ', Buffer.from('NOEXISTSTOPPED')), {
    reply: { kind: 'STOP_NOTOK_RESP' },
    consumed: 7,
  })
})

test('NAMES_RESP lines as real epmd writes them parse', () => {
  const bytes = Buffer.concat([hex('00001111'), Buffer.from('name foo at port 33337\nname bar at port 1\n')])
  assert.equal(parseReply('NAMES_REQ', bytes, true)?.reply, {
    kind: 'NAMES_RESP',
    epmdPort: 4369,
    names: [
      { name: 'foo', port: 33337 },
      { name: 'bar', port: 1 },
    ],
  })
})

test('replies that cannot be what was asked for throw EpmdProtocolError', () => {
  const bad: Array<[EpmdRequestKind, Buffer]> = [
    ['ALIVE2_REQ', hex('77 00')],
    ['PORT_PLEASE2_REQ', hex('76')],
    ['KILL_REQ', Buffer.from('XX')],
    ['STOP_REQ', Buffer.from('WHATEVR')],
    ['NAMES_REQ', Buffer.concat([hex('00001111'), Buffer.from('name foo at port\n')])],
    ['NAMES_REQ', Buffer.concat([hex('00001111'), Buffer.from('name foo at port 99999\n')])],
    ['NAMES_REQ', Buffer.concat([hex('00001111'), hex('ff0a')])],
    ['DUMP_REQ', Buffer.concat([hex('00001111'), Buffer.from('garbage\n')])],
    ['PORT_PLEASE2_REQ', hex('77 00 abcd 4d 00 0006 0005 0001 ff 0000')],
  ]
  for (const [req, bytes] of bad) {
    throwsCode(() => parseReply(req, bytes, true), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
  }
})

test.run()
