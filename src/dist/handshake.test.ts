import { test } from 'uvu'
import fc from 'fast-check'
import * as assert from 'uvu/assert'
import type { Duplex } from 'node:stream'
import { atom } from '../etf/terms.js'
import { duplexPair } from './duplex-pair.js'
import {
  CookieMismatchError,
  HandshakeClosedError,
  HandshakeError,
  HandshakeProtocolError,
  HandshakeStatusError,
  HandshakeTimeoutError,
  MissingFlagsError,
} from './errors.js'
import {
  DEFAULT_FLAGS,
  DFLAG_MAP_TAG,
  DFLAG_NAME_ME,
  DFLAG_PUBLISHED,
  DFLAG_SPAWN,
  DFLAG_MANDATORY_25_DIGEST,
  DFLAG_HANDSHAKE_23,
  DFLAG_UTF8_ATOMS,
  MANDATORY_25,
} from './flags.js'
import { Framer } from './framer.js'
import {
  acceptHandshake,
  encodeChallenge,
  encodeChallengeAck,
  encodeChallengeReply,
  encodeComplement,
  encodeOldSendName,
  encodeSendName,
  encodeStatus,
  genDigest,
  initiateHandshake,
  isValidNodeName,
} from './handshake.js'

const COOKIE = 'secretcookie'
const A = 'a@host'
const B = 'b@host'

function frame2(body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(2 + body.length)
  b.writeUInt16BE(body.length)
  body.copy(b, 2)
  return b
}

/** Reads 2-byte framed handshake messages from a raw stream end (a scripted peer). */
function reader(s: Duplex) {
  const f = new Framer({ lengthBytes: 2, maxFrameSize: 65535 })
  const waiting: Array<(m: Buffer) => void> = []
  s.on('data', (c: Buffer) => {
    f.push(c)
    for (;;) {
      if (waiting.length === 0) return
      const m = f.next()
      if (m === undefined) return
      waiting.shift()!(m)
    }
  })
  return {
    next(): Promise<Buffer> {
      const m = f.next()
      if (m !== undefined) return Promise.resolve(m)
      return new Promise((r) => waiting.push(r))
    },
  }
}

async function rejects(p: Promise<unknown>, cls: Function): Promise<any> {
  try {
    await p
  } catch (e) {
    assert.instance(e, cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`)
    return e
  }
  assert.unreachable(`expected ${cls.name}`)
}

test('digest is MD5(Cookie ++ integer_to_list(Challenge)), as erlang:md5 computes it', () => {
  assert.is(genDigest(3000000000, 'secretcookie').toString('hex').toUpperCase(), '0091CB54CC58E2698CDC9218F1715AB2')
  assert.is(genDigest(0, 'x').toString('hex').toUpperCase(), 'E50EB7598B580311BAB8F39BB8F4815B')
})

test('node names: Name@Host, or a host alone for NAME_ME', () => {
  assert.ok(isValidNodeName('a@b'))
  assert.not.ok(isValidNodeName('a'))
  assert.not.ok(isValidNodeName('@b'))
  assert.not.ok(isValidNodeName('a@'))
  assert.not.ok(isValidNodeName('a@b@c'))
  assert.ok(isValidNodeName('host', true))
  assert.not.ok(isValidNodeName('a@host', true))
})

test('both roles complete with status ok; flags are the intersection; creations cross over', async () => {
  const [x, y] = duplexPair()
  const [ra, rb] = await Promise.all([
    initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 11, flags: DEFAULT_FLAGS | DFLAG_PUBLISHED }),
    acceptHandshake(y, { name: B, cookie: COOKIE, creation: 22 }),
  ])
  assert.is(ra.peer, atom(B))
  assert.is(rb.peer, atom(A))
  assert.is(ra.creation, 22)
  assert.is(rb.creation, 11)
  assert.is(ra.status, 'ok')
  assert.is(rb.status, 'ok')
  assert.is(ra.role, 'initiator')
  assert.is(rb.role, 'acceptor')
  // B is hidden (no PUBLISHED): the negotiated set drops it, but B still sees A offered it.
  assert.is(ra.flags, DEFAULT_FLAGS)
  assert.is(rb.flags, DEFAULT_FLAGS)
  assert.is(rb.peerFlags & DFLAG_PUBLISHED, DFLAG_PUBLISHED)
  assert.is(ra.peerFlags & DFLAG_PUBLISHED, 0n)
  assert.is(ra.tail.length, 0)
  assert.is(rb.tail.length, 0)
})

test('initiator: every message fed one byte at a time, and the bytes after the ack become the tail', async () => {
  const [x, y] = duplexPair()
  const peer = reader(y)
  const p = initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 5 })
  const name = await peer.next()
  assert.is(name[0], 'N'.charCodeAt(0))
  const bytes = (b: Buffer) => {
    for (const c of b) y.write(Buffer.of(c))
  }
  bytes(frame2(encodeStatus('ok')))
  bytes(frame2(encodeChallenge(DEFAULT_FLAGS, 77, 9, B)))
  const reply = await peer.next()
  assert.is(reply[0], 'r'.charCodeAt(0))
  assert.equal(reply.subarray(5), genDigest(77, COOKIE))
  const theirs = reply.readUInt32BE(1)
  const after = Buffer.from([0, 0, 0, 0, 0, 0, 0, 3, 112, 131, 106])
  y.write(Buffer.concat([frame2(encodeChallengeAck(genDigest(theirs, COOKIE))), after]))
  const r = await p
  assert.is(r.creation, 9)
  assert.equal(r.tail, after)
})

test('acceptor: the old send_name (n) with the complement (c) carrying the high flags and the creation', async () => {
  const [x, y] = duplexPair()
  const peer = reader(x)
  const p = acceptHandshake(y, { name: B, cookie: COOKIE, creation: 3 })
  x.write(frame2(encodeOldSendName(DEFAULT_FLAGS, A)))
  const st = await peer.next()
  assert.is(st.toString('latin1'), 'sok')
  const ch = await peer.next()
  assert.is(ch[0], 'N'.charCodeAt(0))
  const challenge = ch.readUInt32BE(9)
  assert.is(ch.readUInt32BE(13), 3)
  x.write(frame2(encodeComplement(DEFAULT_FLAGS, 4242)))
  x.write(frame2(encodeChallengeReply(1234, genDigest(challenge, COOKIE))))
  const ack = await peer.next()
  assert.equal(ack.subarray(1), genDigest(1234, COOKIE))
  const r = await p
  assert.is(r.creation, 4242)
  assert.is(r.peerFlags & DFLAG_SPAWN, DFLAG_SPAWN, 'high flag bits come from the complement')
  assert.is(r.peer, atom(A))
})

test('acceptor: a peer sending MANDATORY_25_DIGEST stands for the whole OTP 25 set', async () => {
  const [x, y] = duplexPair()
  const peer = reader(x)
  const p = acceptHandshake(y, { name: B, cookie: COOKIE, creation: 3 })
  x.write(frame2(encodeSendName(DFLAG_MANDATORY_25_DIGEST | DFLAG_HANDSHAKE_23, 1, A)))
  assert.is((await peer.next()).toString('latin1'), 'sok')
  const ch = await peer.next()
  x.write(frame2(encodeChallengeReply(1, genDigest(ch.readUInt32BE(9), COOKIE))))
  await peer.next()
  const r = await p
  assert.is(r.peerFlags & MANDATORY_25, MANDATORY_25)
})

test('wrong cookie, initiator side wrong: both sides fail with CookieMismatchError, the acceptor naming the peer', async () => {
  const [x, y] = duplexPair()
  const [ea, eb] = await Promise.all([
    rejects(initiateHandshake(x, { name: A, peer: B, cookie: 'wrong', creation: 1 }), CookieMismatchError),
    rejects(acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2 }), CookieMismatchError),
  ])
  assert.is(eb.peer, A)
  assert.is(eb.code, 'ERR_DIST_BAD_COOKIE')
  assert.ok(ea)
})

test('wrong cookie, acceptor side wrong: the initiator refuses the ack with CookieMismatchError', async () => {
  const [x, y] = duplexPair()
  const peer = reader(y)
  const p = initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 })
  await peer.next()
  y.write(frame2(encodeStatus('ok')))
  y.write(frame2(encodeChallenge(DEFAULT_FLAGS, 1, 2, B)))
  const reply = await peer.next()
  y.write(frame2(encodeChallengeAck(genDigest(reply.readUInt32BE(1), 'other cookie'))))
  const e = await rejects(p, CookieMismatchError)
  assert.is(e.peer, B)
})

test('status ok_simultaneous: the initiator continues', async () => {
  const [x, y] = duplexPair()
  const [ra, rb] = await Promise.all([
    initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 }),
    acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, decide: () => 'ok_simultaneous' }),
  ])
  assert.is(ra.status, 'ok_simultaneous')
  assert.is(rb.status, 'ok_simultaneous')
})

test('status nok: both sides end, the initiator with HandshakeStatusError("nok")', async () => {
  const [x, y] = duplexPair()
  const [ea, eb] = await Promise.all([
    rejects(initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 }), HandshakeStatusError),
    rejects(acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, decide: () => 'nok' }), HandshakeStatusError),
  ])
  assert.is(ea.status, 'nok')
  assert.is(eb.status, 'nok')
})

test('status not_allowed from the decision', async () => {
  const [x, y] = duplexPair()
  const [ea] = await Promise.all([
    rejects(initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 }), HandshakeStatusError),
    rejects(acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, decide: () => 'not_allowed' }), HandshakeStatusError),
  ])
  assert.is(ea.status, 'not_allowed')
})

test('a peer lacking a mandatory flag gets not_allowed (acceptor) and is refused (initiator)', async () => {
  {
    const [x, y] = duplexPair()
    const [ea, eb] = await Promise.all([
      rejects(
        initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1, flags: DEFAULT_FLAGS & ~DFLAG_MAP_TAG }),
        HandshakeStatusError,
      ),
      rejects(acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2 }), MissingFlagsError),
    ])
    assert.is(ea.status, 'not_allowed')
    assert.equal(eb.missing, ['MAP_TAG'])
  }
  {
    const [x, y] = duplexPair()
    const [ea] = await Promise.all([
      rejects(initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 }), MissingFlagsError),
      rejects(
        acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, flags: DEFAULT_FLAGS & ~DFLAG_UTF8_ATOMS }),
        HandshakeClosedError,
      ),
    ])
    assert.equal(ea.missing, ['UTF8_ATOMS'])
  }
})

test('status alive answered true continues (beforeAck runs), answered false ends both', async () => {
  {
    const [x, y] = duplexPair()
    let acked = ''
    const [ra, rb] = await Promise.all([
      initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1, onAlive: () => true }),
      acceptHandshake(y, {
        name: B,
        cookie: COOKIE,
        creation: 2,
        decide: () => 'alive',
        beforeAck: (peer, status) => {
          acked = `${peer}:${status}`
        },
      }),
    ])
    assert.is(ra.status, 'alive')
    assert.is(rb.status, 'alive')
    assert.is(acked, `${A}:alive`)
  }
  {
    const [x, y] = duplexPair()
    const [ea, eb] = await Promise.all([
      rejects(initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1, onAlive: () => false }), HandshakeStatusError),
      rejects(acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, decide: () => 'alive' }), HandshakeStatusError),
    ])
    assert.is(ea.status, 'alive')
    assert.is(eb.status, 'alive')
  }
})

test('NAME_ME: the acceptor answers named: with a name on the peer host and a creation', async () => {
  const [x, y] = duplexPair()
  const [ra, rb] = await Promise.all([
    initiateHandshake(x, { name: 'host', peer: B, cookie: COOKIE, creation: 0, nameMe: true }),
    acceptHandshake(y, {
      name: B,
      cookie: COOKIE,
      creation: 2,
      decide: (h) => {
        assert.ok(h.nameMe)
        assert.is(h.name, 'host')
        return { named: 'dyn42@host', creation: 777 }
      },
    }),
  ])
  assert.is(ra.status, 'named')
  assert.is(ra.name, atom('dyn42@host'))
  assert.is(ra.ourCreation, 777)
  assert.is(rb.peer, atom('dyn42@host'))
  assert.is(rb.creation, 777)
  assert.is(ra.flags & DFLAG_NAME_ME, 0n)
})

test('NAME_ME without decide: a generated name on the peer host', async () => {
  const [x, y] = duplexPair()
  const [ra, rb] = await Promise.all([
    initiateHandshake(x, { name: 'h2', cookie: COOKIE, creation: 0, nameMe: true }),
    acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2 }),
  ])
  assert.ok(ra.name.name.endsWith('@h2'))
  assert.is(rb.peer, ra.name)
  assert.ok(ra.ourCreation > 0)
})

test('an unknown status ends the initiator with HandshakeStatusError', async () => {
  const [x, y] = duplexPair()
  const peer = reader(y)
  const p = initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 })
  await peer.next()
  y.write(frame2(encodeStatus('weird')))
  const e = await rejects(p, HandshakeStatusError)
  assert.is(e.status, 'weird')
})

test('the challenge must come from the node we called', async () => {
  const [x, y] = duplexPair()
  const peer = reader(y)
  const p = initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 })
  await peer.next()
  y.write(frame2(encodeStatus('ok')))
  y.write(frame2(encodeChallenge(DEFAULT_FLAGS, 1, 2, 'c@host')))
  await rejects(p, HandshakeProtocolError)
})

test('malformed first messages are HandshakeProtocolError', async () => {
  for (const bad of [Buffer.from('N\x00\x01'), Buffer.from('xyz'), encodeSendName(DEFAULT_FLAGS, 1, 'noat')]) {
    const [x, y] = duplexPair()
    const p = acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2 })
    x.write(frame2(bad))
    await rejects(p, HandshakeProtocolError)
  }
})

test('a peer that stalls is dropped after the step timeout', async () => {
  const [x, y] = duplexPair()
  const e = await rejects(acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, timeout: 50 }), HandshakeTimeoutError)
  assert.is(e.code, 'ERR_DIST_SETUP_TIMEOUT')
  assert.ok(y.destroyed)
  x.destroy()
})

test('a closed socket mid-handshake is HandshakeClosedError', async () => {
  const [x, y] = duplexPair()
  const p = initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1 })
  y.end()
  await rejects(p, HandshakeClosedError)
})

test('random first messages only ever end in a HandshakeError', async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(0x4e, 0x6e, 0x73, 0x00), fc.uint8Array({ maxLength: 60 }), async (tag, rest) => {
      const [x, y] = duplexPair()
      const p = acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, timeout: 20 })
      x.write(frame2(Buffer.from([tag, ...rest])))
      try {
        await p
      } catch (e) {
        if (!(e instanceof HandshakeError)) throw e
      }
      x.destroy()
    }),
    { numRuns: 300 },
  )
})

test('lengthBytes 4 (inside a TLS session, as inet_tls_dist): every handshake message has a 4-byte length', async () => {
  const [x, y] = duplexPair()
  const firstBytes: Buffer[] = []
  y.once('data', (c: Buffer) => firstBytes.push(c))
  const [ra, rb] = await Promise.all([
    initiateHandshake(x, { name: A, peer: B, cookie: COOKIE, creation: 1, lengthBytes: 4 }),
    acceptHandshake(y, { name: B, cookie: COOKIE, creation: 2, lengthBytes: 4 }),
  ])
  assert.is(ra.peer, atom(B))
  assert.is(rb.peer, atom(A))
  const sent = encodeSendName(DEFAULT_FLAGS | DFLAG_HANDSHAKE_23, 1, A)
  assert.is(firstBytes[0].readUInt32BE(0), sent.length)
  assert.is(firstBytes[0][4], 0x4e)
  // A 2-byte peer against a 4-byte one never completes: the lengths disagree.
  const [p, q] = duplexPair()
  const r = await Promise.allSettled([
    initiateHandshake(p, { name: A, cookie: COOKIE, creation: 1, timeout: 200 }),
    acceptHandshake(q, { name: B, cookie: COOKIE, creation: 2, timeout: 200, lengthBytes: 4 }),
  ])
  assert.ok(r.every((o) => o.status === 'rejected' && o.reason instanceof HandshakeError))
})

test.run()
