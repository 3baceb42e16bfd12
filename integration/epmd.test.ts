// The EPMD client against a real `epmd`, and the embedded EPMD server serving real `erl` nodes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import * as net from 'node:net'
import { promisify } from 'node:util'
import { names, portPlease, register } from '../src/epmd/client.js'
import { EpmdRegisterError } from '../src/epmd/errors.js'
import { encodeRequest, type EpmdRequest } from '../src/epmd/messages.js'
import { startEpmdServer } from '../src/epmd/server.js'
import { Epmd, ErlNode, cleanup, eventually, freePort, shortHost } from './harness.js'

const execFileP = promisify(execFile)

test.after(cleanup)

/** One raw request on a fresh connection; everything the server sends until it closes (or `waitMs` passes). */
function rawExchange(port: number, bytes: Buffer, waitMs = 1500): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    const got: Buffer[] = []
    const t = setTimeout(() => {
      s.destroy()
      resolve({ data: Buffer.concat(got), closed: false })
    }, waitMs)
    s.on('data', (d) => got.push(d))
    s.on('error', reject)
    s.on('close', () => {
      clearTimeout(t)
      resolve({ data: Buffer.concat(got), closed: true })
    })
    s.on('connect', () => s.write(bytes))
  })
}

test('client registers with a real epmd, is listed and found, and registers again after epmd restarts', async () => {
  const epmd = await Epmd.start()
  const distPort = await freePort()
  const reg = await register({ name: 'ts_epmd_a', port: distPort, epmdPort: epmd.port, minBackoff: 50, maxBackoff: 500 })
  try {
    assert.is(reg.replyKind, 'ALIVE2_X_RESP')
    assert.match(await epmd.names(), new RegExp(`name ts_epmd_a at port ${distPort}\\n`))
    assert.equal(await names('127.0.0.1', epmd.port), [{ name: 'ts_epmd_a', port: distPort }])
    assert.equal(await portPlease('ts_epmd_a', '127.0.0.1', epmd.port), {
      port: distPort,
      nodeType: 72,
      protocol: 0,
      highestVersion: 6,
      lowestVersion: 6,
      name: 'ts_epmd_a',
      extra: Buffer.alloc(0),
    })
    assert.is(await portPlease('nobody_here', '127.0.0.1', epmd.port), undefined)

    // Real epmd refuses a second live registration of the name.
    try {
      await register({ name: 'ts_epmd_a', port: distPort + 1, epmdPort: epmd.port, reconnect: false })
      assert.unreachable('duplicate registration accepted by epmd')
    } catch (e) {
      assert.instance(e, EpmdRegisterError)
    }

    const lost = new Promise((r) => reg.once('lost', r))
    const again = new Promise<number>((r) => reg.once('registered', r))
    await epmd.restart() // SIGKILL, then a new epmd on the same port
    await lost
    const creation = await again
    assert.is(reg.creation, creation)
    assert.ok(reg.registered)
    await eventually(async () => /name ts_epmd_a at port/.test(await epmd.names()), 'the name listed again')
    assert.is((await portPlease('ts_epmd_a', '127.0.0.1', epmd.port))?.port, distPort)

    await reg.close()
    await eventually(async () => !/ts_epmd_a/.test(await epmd.names()), 'the name gone after close()')
  } finally {
    await reg.close()
    await epmd.stop()
  }
})

test('an erl node finds a TypeScript registration through real epmd', async () => {
  const epmd = await Epmd.start()
  const reg = await register({ name: 'ts_epmd_seen', port: 12345, epmdPort: epmd.port })
  const node = await ErlNode.start({ name: 'epmd_looker', epmdPort: epmd.port })
  try {
    assert.is(await node.eval(`erl_epmd:port_please("ts_epmd_seen", {127,0,0,1})`), '{port,12345,6}')
    const listed = await node.eval('{ok, Names} = net_adm:names(), lists:keyfind("ts_epmd_seen", 1, Names)')
    assert.is(listed, '{"ts_epmd_seen",12345}')
  } finally {
    await node.stop()
    await reg.close()
    await epmd.stop()
  }
})

test('two real erl nodes register with the embedded EPMD and ping each other', async () => {
  const srv = await startEpmdServer({ port: await freePort() })
  try {
    const [a, b] = await Promise.all([
      ErlNode.start({ name: 'emb_a', epmdPort: srv.port }),
      ErlNode.start({ name: 'emb_b', epmdPort: srv.port, hidden: true }),
    ])
    assert.is(await a.eval(`net_adm:ping('emb_b@${shortHost}')`), 'pong')
    assert.is(await b.eval(`net_adm:ping('emb_a@${shortHost}')`), 'pong')
    const firstCreation = await a.eval('erlang:system_info(creation)')

    const listed = await names('127.0.0.1', srv.port)
    assert.equal(listed.map((n) => n.name).sort(), ['emb_a', 'emb_b'])
    for (const n of listed) {
      const info = await portPlease(n.name, '127.0.0.1', srv.port)
      assert.is(info?.port, n.port)
      assert.is(info?.nodeType, 77, 'erl registers as a normal node even with -hidden')
      assert.is(info?.highestVersion, 6)
    }
    // net_adm:names/0 in erl, and the epmd binary as a client, read the embedded server's NAMES reply.
    const seen = await a.eval('{ok, Ns} = net_adm:names(), lists:sort([N || {N, _} <- Ns])')
    assert.is(seen, '["emb_a","emb_b"]')
    const { stdout } = await execFileP('epmd', ['-port', String(srv.port), '-names'])
    assert.match(stdout, /name emb_a at port \d+/)
    assert.match(stdout, /name emb_b at port \d+/)

    // A TypeScript registration on the embedded server is found by erl.
    const reg = await register({ name: 'ts_emb', port: 23456, epmdPort: srv.port })
    assert.is(await a.eval(`erl_epmd:port_please("ts_emb", {127,0,0,1})`), '{port,23456,6}')
    await reg.close()

    // A registration lives as long as the node's EPMD connection.
    await b.kill()
    await eventually(async () => (await names('127.0.0.1', srv.port)).every((n) => n.name !== 'emb_b'), 'emb_b gone')
    await a.stop()
    await eventually(async () => (await names('127.0.0.1', srv.port)).length === 0, 'emb_a gone')

    // The same name registers again and gets a different creation, as with real epmd.
    const c = await ErlNode.start({ name: 'emb_a', epmdPort: srv.port })
    const secondCreation = await c.eval('erlang:system_info(creation)')
    assert.is(Number(secondCreation), Number(firstCreation) + 1)
    await c.stop()
  } finally {
    await srv.close()
  }
})

test('the 16-bit ALIVE2_RESP path: version 5 registrations with real epmd and the embedded server', async () => {
  const epmd = await Epmd.start()
  const srv = await startEpmdServer({ port: 0 })
  try {
    for (const port of [epmd.port, srv.port]) {
      const r = await register({ name: 'ts_v5', port: 999, epmdPort: port, highestVersion: 5, lowestVersion: 5 })
      assert.is(r.replyKind, 'ALIVE2_RESP')
      assert.ok(r.creation >= 1 && r.creation <= 3, `creation ${r.creation} in 1..3`)
      assert.is((await portPlease('ts_v5', '127.0.0.1', port))?.highestVersion, 5)
      await r.close()
    }
  } finally {
    await srv.close()
    await epmd.stop()
  }
})

test('the embedded server answers raw requests byte for byte as real epmd does', async () => {
  const epmd = await Epmd.start()
  const srv = await startEpmdServer({ port: 0 })
  // Each side holds the same registration so the look-ups have something to find.
  const regs = await Promise.all(
    [epmd.port, srv.port].map((p) => register({ name: 'conf', port: 4242, epmdPort: p, extra: Buffer.of(5, 6) })),
  )
  try {
    const req = (r: EpmdRequest) => encodeRequest(r)
    const cases: Array<[string, Buffer]> = [
      ['PORT_PLEASE2_REQ hit', req({ kind: 'PORT_PLEASE2_REQ', name: 'conf' })],
      ['PORT_PLEASE2_REQ miss', req({ kind: 'PORT_PLEASE2_REQ', name: 'absent' })],
      ['PORT_PLEASE2_REQ NUL-terminated', Buffer.of(0, 6, 122, ...Buffer.from('conf'), 0)],
      ['KILL_REQ with a live node', req({ kind: 'KILL_REQ' })],
      ['STOP_REQ without relaxed check', req({ kind: 'STOP_REQ', name: 'conf' })],
      ['unknown tag', Buffer.of(0, 1, 1)],
      ['ALIVE2_REQ too short', Buffer.of(0, 3, 120, 0, 1)],
      ['oversized length', Buffer.of(0x0f, 0xff, 120)],
      ['zero length', Buffer.of(0, 0)],
    ]
    for (const [what, bytes] of cases) {
      const [real, ours] = await Promise.all([rawExchange(epmd.port, bytes), rawExchange(srv.port, bytes)])
      assert.equal(ours.data.toString('hex'), real.data.toString('hex'), what)
      assert.is(ours.closed, real.closed, `${what}: closed`)
    }
    // NAMES_REQ: the same text after each server's own port number.
    const [real, ours] = await Promise.all([
      rawExchange(epmd.port, req({ kind: 'NAMES_REQ' })),
      rawExchange(srv.port, req({ kind: 'NAMES_REQ' })),
    ])
    assert.is(real.data.readUInt32BE(0), epmd.port)
    assert.is(ours.data.readUInt32BE(0), srv.port)
    assert.is(ours.data.subarray(4).toString(), real.data.subarray(4).toString())
    // ALIVE2_REQ of a taken name: the same refusal (result 1, creation 99), then both close.
    const dup = req({ kind: 'ALIVE2_REQ', port: 1, nodeType: 72, protocol: 0, highestVersion: 6, lowestVersion: 6, name: 'conf', extra: Buffer.alloc(0) })
    const [realDup, ourDup] = await Promise.all([rawExchange(epmd.port, dup), rawExchange(srv.port, dup)])
    assert.is(ourDup.data.toString('hex'), realDup.data.toString('hex'))
    assert.is(ourDup.data.toString('hex'), '760100000063')
  } finally {
    await Promise.all(regs.map((r) => r.close()))
    await srv.close()
    await epmd.stop()
  }
})

test.run()
