import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as net from 'node:net'
import { dump, names, portPlease, register, type Registration } from './client.js'
import { EpmdError, EpmdListenError, EpmdRegisterError } from './errors.js'
import { encodeRequest, parseReply, type EpmdReply, type EpmdRequest, type EpmdRequestKind } from './messages.js'
import { ensureEpmd, startEpmdServer, type EpmdServer } from './server.js'

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function eventually<T>(check: () => Promise<T> | T, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await check()
    if (v) return v
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Writes raw bytes (in the given pieces) and collects everything until the server closes. */
function raw(port: number, pieces: Buffer[]): Promise<{ data: Buffer; closedBy: 'server' }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setNoDelay(true)
    const got: Buffer[] = []
    s.on('data', (d) => got.push(d))
    s.on('error', reject)
    s.on('close', () => resolve({ data: Buffer.concat(got), closedBy: 'server' }))
    s.on('connect', async () => {
      for (const p of pieces) {
        if (s.destroyed) return
        s.write(p)
        await sleep(2)
      }
    })
  })
}

async function rawReply(port: number, req: EpmdRequest, pieces?: Buffer[]): Promise<EpmdReply> {
  const { data } = await raw(port, pieces ?? [encodeRequest(req)])
  const parsed = parseReply(req.kind as EpmdRequestKind, data, true)
  assert.ok(parsed, `a reply to ${req.kind}`)
  return parsed.reply
}

const alive = (name: string, port: number, highestVersion = 6): EpmdRequest => ({
  kind: 'ALIVE2_REQ',
  port,
  nodeType: 77,
  protocol: 0,
  highestVersion,
  lowestVersion: 5,
  name,
  extra: Buffer.alloc(0),
})

async function withServer(fn: (srv: EpmdServer) => Promise<void>, opts = {}) {
  const srv = await startEpmdServer({ port: 0, ...opts })
  try {
    await fn(srv)
  } finally {
    await srv.close()
  }
}

test('a registration is visible through NAMES_REQ and PORT_PLEASE2_REQ with every field', () =>
  withServer(async (srv) => {
    const reg = await register({ name: 'tsnode', port: 41000, epmdPort: srv.port, extra: Buffer.of(1, 2) })
    try {
      assert.equal(await names('127.0.0.1', srv.port), [{ name: 'tsnode', port: 41000 }])
      assert.equal(await portPlease('tsnode', '127.0.0.1', srv.port), {
        port: 41000,
        nodeType: 72,
        protocol: 0,
        highestVersion: 6,
        lowestVersion: 6,
        name: 'tsnode',
        extra: Buffer.of(1, 2),
      })
      assert.is(await portPlease('other', '127.0.0.1', srv.port), undefined)
      assert.ok(reg.creation >= 4, 'a version 6 creation skips 0..3')
      assert.is(reg.replyKind, 'ALIVE2_X_RESP')
    } finally {
      await reg.close()
    }
    await eventually(async () => (await names('127.0.0.1', srv.port)).length === 0, 'unregistration on close')
    assert.is(await portPlease('tsnode', '127.0.0.1', srv.port), undefined)
  }))

test('a live name is refused with result 1; once free it registers with a new creation', () =>
  withServer(async (srv) => {
    const first = await register({ name: 'dup', port: 1000, epmdPort: srv.port })
    try {
      await register({ name: 'dup', port: 1001, epmdPort: srv.port, reconnect: false })
      assert.unreachable('duplicate accepted')
    } catch (e) {
      assert.instance(e, EpmdRegisterError)
      assert.is((e as EpmdRegisterError).result, 1)
    }
    const creations = [first.creation]
    await first.close()
    for (let i = 0; i < 3; i++) {
      await eventually(() => srv.lookup('dup') === undefined, 'unregistered')
      const r = await register({ name: 'dup', port: 1000 + i, epmdPort: srv.port })
      creations.push(r.creation)
      await r.close()
    }
    assert.is(new Set(creations).size, creations.length, `creations ${creations} all differ`)
    for (let i = 1; i < creations.length; i++) assert.is(creations[i], creations[i - 1]! + 1)
  }))

test('a version 5 node gets the 16-bit ALIVE2_RESP with a creation in 1..3', () =>
  withServer(async (srv) => {
    const r = await register({ name: 'old', port: 7, epmdPort: srv.port, highestVersion: 5, lowestVersion: 5 })
    try {
      assert.is(r.replyKind, 'ALIVE2_RESP')
      assert.ok(r.creation >= 1 && r.creation <= 3, `creation ${r.creation}`)
      assert.is((await portPlease('old', '127.0.0.1', srv.port))?.highestVersion, 5)
    } finally {
      await r.close()
    }
  }))

test('requests split at every offset are served', () =>
  withServer(async (srv) => {
    const reg = await register({ name: 'split', port: 2222, epmdPort: srv.port })
    try {
      const req: EpmdRequest = { kind: 'PORT_PLEASE2_REQ', name: 'split' }
      const bytes = encodeRequest(req)
      for (let at = 1; at < bytes.length; at++) {
        const reply = await rawReply(srv.port, req, [bytes.subarray(0, at), bytes.subarray(at)])
        assert.is(reply.kind === 'PORT2_RESP' && reply.node?.port, 2222, `split at ${at}`)
      }
    } finally {
      await reg.close()
    }
  }))

test('malformed, oversized and surplus requests close only that connection', () =>
  withServer(async (srv) => {
    const rejects: Error[] = []
    srv.on('reject', (e) => rejects.push(e))
    const reg = await register({ name: 'survivor', port: 3333, epmdPort: srv.port })
    try {
      const bad = [
        Buffer.of(0xff, 0xff, 120), // announced length beyond the limit
        Buffer.of(0, 0), // zero length
        Buffer.of(0, 1, 0x01), // unknown tag
        Buffer.of(0, 3, 120, 0, 1), // ALIVE2_REQ too short
        Buffer.concat([encodeRequest({ kind: 'NAMES_REQ' }), Buffer.of(1)]), // bytes after the request
        Buffer.of(0, 2, 122, 0xc3), // PORT_PLEASE2_REQ name not UTF-8
      ]
      for (const b of bad) {
        const { data } = await raw(srv.port, [b])
        assert.is(data.length, 0, `no reply to ${b.toString('hex')}`)
      }
      assert.is(rejects.length, bad.length)
      for (const e of rejects) assert.instance(e, EpmdError)
      for (let i = 0; i < 50; i++) {
        const junk = Buffer.from(Array.from({ length: 1 + (i % 40) }, (_, j) => (i * 31 + j * 17) & 0xff))
        await raw(srv.port, [junk, junk]).catch(() => undefined)
      }
      assert.ok(reg.registered)
      assert.equal(await names('127.0.0.1', srv.port), [{ name: 'survivor', port: 3333 }])
    } finally {
      await reg.close()
    }
  }, { packetTimeout: 200 }))

test('bytes sent on a registration connection unregister it, as epmd does', () =>
  withServer(async (srv) => {
    const s = net.connect(srv.port, '127.0.0.1')
    s.on('error', () => {})
    s.resume()
    await new Promise((r) => s.once('connect', r))
    s.write(encodeRequest(alive('chatty', 4444)))
    await eventually(() => srv.lookup('chatty'), 'registered')
    const closed = new Promise((r) => s.once('close', r))
    s.write(Buffer.of(1))
    await closed
    await eventually(() => srv.lookup('chatty') === undefined, 'unregistered')
  }))

test('DUMP_REQ lists active and old names; KILL_REQ is refused while nodes live', () =>
  withServer(async (srv) => {
    const a = await register({ name: 'a', port: 10, epmdPort: srv.port })
    const b = await register({ name: 'b', port: 11, epmdPort: srv.port })
    await b.close()
    await eventually(() => srv.lookup('b') === undefined, 'b unregistered')
    const entries = await dump('127.0.0.1', srv.port)
    assert.equal(
      entries.map(({ state, name, port }) => ({ state, name, port })),
      [
        { state: 'active', name: 'a', port: 10 },
        { state: 'old', name: 'b', port: 11 },
      ],
    )
    assert.equal(await rawReply(srv.port, { kind: 'KILL_REQ' }), { kind: 'KILL_RESP', ok: false })
    assert.equal(await names('127.0.0.1', srv.port), [{ name: 'a', port: 10 }])
    await a.close()
  }))

test('KILL_REQ with no live node stops the server', async () => {
  const srv = await startEpmdServer({ port: 0 })
  const closed = new Promise<void>((r) => srv.once('close', r))
  assert.equal(await rawReply(srv.port, { kind: 'KILL_REQ' }), { kind: 'KILL_RESP', ok: true })
  await closed
  await srv.close()
})

test('STOP_REQ is ignored unless relaxedCommandCheck, then it unregisters', async () => {
  await withServer(async (srv) => {
    const r = await register({ name: 's', port: 12, epmdPort: srv.port, reconnect: false })
    const { data } = await raw(srv.port, [encodeRequest({ kind: 'STOP_REQ', name: 's' })])
    assert.is(data.length, 0)
    assert.ok(srv.lookup('s'))
    await r.close()
  })
  await withServer(
    async (srv) => {
      const r = await register({ name: 's', port: 12, epmdPort: srv.port, reconnect: false })
      const lost = new Promise((res) => r.once('lost', res))
      assert.equal(await rawReply(srv.port, { kind: 'STOP_REQ', name: 's' }), { kind: 'STOP_OK_RESP' })
      assert.equal(await rawReply(srv.port, { kind: 'STOP_REQ', name: 'nope' }), { kind: 'STOP_NOTOK_RESP' })
      await lost
      assert.not.ok(r.registered)
      assert.is(srv.lookup('s'), undefined)
    },
    { relaxedCommandCheck: true },
  )
})

test('the client registers again by itself when its EPMD goes away and comes back', async () => {
  let srv = await startEpmdServer({ port: 0 })
  const port = srv.port
  const reg: Registration = await register({ name: 'phoenix', port: 5555, epmdPort: port, minBackoff: 20, maxBackoff: 100 })
  const seen: number[] = []
  try {
    const lost = new Promise((r) => reg.once('lost', r))
    const retried = new Promise((r) => reg.once('retry', r))
    const again = new Promise<number>((r) => reg.once('registered', r))
    await srv.close()
    await lost
    assert.not.ok(reg.registered)
    await retried // nothing listens: attempts fail and back off
    srv = await startEpmdServer({ port })
    const creation = await again
    seen.push(creation)
    assert.is(reg.creation, creation)
    assert.ok(reg.registered)
    assert.equal(await names('127.0.0.1', port), [{ name: 'phoenix', port: 5555 }])
  } finally {
    await reg.close()
    await srv.close()
  }
  assert.is(seen.length, 1)
})

test('onCreation is called on re-registration; reconnect: false ends with close', async () => {
  let srv = await startEpmdServer({ port: 0 })
  const port = srv.port
  const creations: number[] = []
  const losses: Error[] = []
  const reg = await register({
    name: 'cb',
    port: 1,
    epmdPort: port,
    minBackoff: 10,
    onCreation: (c) => creations.push(c),
    onLost: (e) => losses.push(e),
  })
  const once = await register({ name: 'once', port: 2, epmdPort: port, reconnect: false })
  const onceClosed = new Promise<void>((r) => once.once('close', () => r()))
  const again = new Promise((r) => reg.once('registered', r))
  await srv.close()
  srv = await startEpmdServer({ port })
  await again
  await onceClosed
  assert.is(creations.length, 1)
  assert.is(creations[0], reg.creation)
  assert.is(losses.length, 1)
  assert.is((losses[0] as EpmdError).code, 'ERR_EPMD_CLOSED')
  assert.equal(await names('127.0.0.1', port), [{ name: 'cb', port: 1 }])
  await reg.close()
  await srv.close()
})

test('aborting the signal closes an established registration', () =>
  withServer(async (srv) => {
    const ac = new AbortController()
    const reg = await register({ name: 'abortme', port: 1, epmdPort: srv.port, signal: ac.signal })
    const closed = new Promise<void>((r) => reg.once('close', () => r()))
    ac.abort()
    await closed
    await eventually(() => srv.lookup('abortme') === undefined, 'unregistered')
  }))

test('a port already in use is EpmdListenError', () =>
  withServer(async (srv) => {
    try {
      await startEpmdServer({ port: srv.port })
      assert.unreachable('second listener')
    } catch (e) {
      assert.instance(e, EpmdListenError)
      assert.is((e as EpmdListenError).code, 'ERR_EPMD_LISTEN')
      assert.is(((e as EpmdListenError).cause as { code?: string }).code, 'EADDRINUSE')
    }
  }))

test('a connection that never completes its request is closed after packetTimeout', () =>
  withServer(
    async (srv) => {
      const { data } = await raw(srv.port, [Buffer.of(0, 5, 120)])
      assert.is(data.length, 0)
    },
    { packetTimeout: 100 },
  ))

test('ensureEpmd starts a server only when no EPMD answers on the port', async () => {
  const probe = await startEpmdServer({ port: 0 })
  const port = probe.port
  assert.is(await ensureEpmd({ port }), undefined, 'an EPMD already answers')
  await probe.close()
  const started = await ensureEpmd({ port })
  assert.ok(started)
  try {
    assert.is(started.port, port)
    assert.is(await ensureEpmd({ port }), undefined)
    const r = await register({ name: 'ensured', port: 9, epmdPort: port })
    assert.equal(await names('127.0.0.1', port), [{ name: 'ensured', port: 9 }])
    await r.close()
  } finally {
    await started.close()
  }
})

test.run()
