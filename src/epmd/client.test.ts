import { test } from 'uvu'
import * as assert from 'uvu/assert'
import * as net from 'node:net'
import { Duplex } from 'node:stream'
import { names, portPlease, register } from './client.js'
import {
  EpmdAbortedError,
  EpmdArgumentError,
  EpmdClosedError,
  EpmdConnectError,
  EpmdError,
  EpmdProtocolError,
  EpmdRegisterError,
  EpmdTimeoutError,
} from './errors.js'
import { encodeReply, encodeRequest, parseRequest, type EpmdReply } from './messages.js'

const tick = () => new Promise<void>((r) => setTimeout(r, 5))

/** A fake EPMD: each connection gets `serve(socket, requestBytes)` once a full request arrived. */
async function fakeEpmd(serve: (s: net.Socket, req: Buffer) => void | Promise<void>) {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    let buf: Buffer = Buffer.alloc(0)
    let served = false
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (!served && parseRequest(buf)) {
        served = true
        void serve(s, buf)
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

async function rejectsWith(p: Promise<unknown>, cls: abstract new (...a: never[]) => Error, code: string) {
  try {
    await p
  } catch (e) {
    assert.instance(e, cls)
    assert.instance(e, EpmdError)
    assert.is((e as EpmdError).code, code)
    return e
  }
  assert.unreachable(`expected ${code}`)
}

const portReply: EpmdReply = {
  kind: 'PORT2_RESP',
  result: 0,
  node: {
    port: 40123,
    nodeType: 77,
    protocol: 0,
    highestVersion: 6,
    lowestVersion: 5,
    name: 'peer',
    extra: Buffer.of(9, 8, 7),
  },
}

test('portPlease reads a PORT2_RESP split across TCP chunks at every offset', async () => {
  const bytes = encodeReply(portReply)
  let split = 0
  const fake = await fakeEpmd(async (s, req) => {
    assert.equal(req, encodeRequest({ kind: 'PORT_PLEASE2_REQ', name: 'peer' }))
    const at = split
    s.setNoDelay(true)
    s.write(bytes.subarray(0, at))
    await tick()
    s.end(bytes.subarray(at))
  })
  try {
    for (split = 0; split <= bytes.length; split++) {
      const info = await portPlease('peer', '127.0.0.1', fake.port)
      assert.equal(info, portReply.node, `split at ${split}`)
    }
  } finally {
    await fake.close()
  }
})

test('portPlease resolves undefined for an unknown name', async () => {
  const fake = await fakeEpmd((s) => void s.end(Buffer.of(119, 1)))
  try {
    assert.is(await portPlease('nobody', '127.0.0.1', fake.port), undefined)
  } finally {
    await fake.close()
  }
})

test('names reads a NAMES_RESP that arrives a byte at a time and ends at close', async () => {
  const bytes = encodeReply({
    kind: 'NAMES_RESP',
    epmdPort: 4369,
    names: [
      { name: 'a', port: 1 },
      { name: 'bb', port: 65535 },
    ],
  })
  const fake = await fakeEpmd(async (s) => {
    s.setNoDelay(true)
    for (const b of bytes) {
      s.write(Buffer.of(b))
      await tick()
    }
    s.end()
  })
  try {
    assert.equal(await names('127.0.0.1', fake.port), [
      { name: 'a', port: 1 },
      { name: 'bb', port: 65535 },
    ])
  } finally {
    await fake.close()
  }
})

test('a refused connection is EpmdConnectError', async () => {
  const port = await closedPort()
  const e = (await rejectsWith(names('127.0.0.1', port), EpmdConnectError, 'ERR_EPMD_CONNECT')) as EpmdConnectError
  assert.is(e.port, port)
  await rejectsWith(register({ name: 'x', port: 1, epmdPort: port }), EpmdConnectError, 'ERR_EPMD_CONNECT')
})

test('an EPMD that never answers is EpmdTimeoutError', async () => {
  const fake = await fakeEpmd(() => {})
  try {
    await rejectsWith(portPlease('x', '127.0.0.1', fake.port, { timeout: 100 }), EpmdTimeoutError, 'ERR_EPMD_TIMEOUT')
  } finally {
    await fake.close()
  }
})

test('a connection closed mid-reply is EpmdClosedError', async () => {
  const fake = await fakeEpmd((s) => void s.end(encodeReply(portReply).subarray(0, 7)))
  try {
    await rejectsWith(portPlease('x', '127.0.0.1', fake.port), EpmdClosedError, 'ERR_EPMD_CLOSED')
  } finally {
    await fake.close()
  }
})

test('a reply of the wrong kind is EpmdProtocolError', async () => {
  const fake = await fakeEpmd((s) => void s.end(Buffer.of(118, 0, 0, 0, 0, 1)))
  try {
    await rejectsWith(portPlease('x', '127.0.0.1', fake.port), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
  } finally {
    await fake.close()
  }
})

test('a NAMES reply beyond maxReplyBytes is refused', async () => {
  const fake = await fakeEpmd((s) => {
    s.write(Buffer.of(0, 0, 0x11, 0x11))
    s.write(Buffer.alloc(5000, 'x'))
  })
  try {
    await rejectsWith(names('127.0.0.1', fake.port, { maxReplyBytes: 1000 }), EpmdProtocolError, 'ERR_EPMD_PROTOCOL')
  } finally {
    await fake.close()
  }
})

test('an aborted signal gives EpmdAbortedError, before and during a request', async () => {
  const fake = await fakeEpmd(() => {})
  try {
    await rejectsWith(
      names('127.0.0.1', fake.port, { signal: AbortSignal.abort() }),
      EpmdAbortedError,
      'ERR_EPMD_ABORTED',
    )
    const ac = new AbortController()
    const p = register({ name: 'n', port: 1, epmdPort: fake.port, signal: ac.signal })
    setTimeout(() => ac.abort(), 20)
    await rejectsWith(p, EpmdAbortedError, 'ERR_EPMD_ABORTED')
  } finally {
    await fake.close()
  }
})

test('register sends a hidden ALIVE2_REQ by default and a normal one on request', async () => {
  const seen: Buffer[] = []
  const fake = await fakeEpmd((s, req) => {
    seen.push(req)
    s.write(encodeReply({ kind: 'ALIVE2_X_RESP', result: 0, creation: 0x01020304 }))
  })
  try {
    const hidden = await register({ name: 'h', port: 5001, epmdPort: fake.port })
    const normal = await register({ name: 'n', port: 5002, epmdPort: fake.port, hidden: false, extra: Buffer.of(1) })
    assert.is(hidden.creation, 0x01020304)
    assert.is(hidden.replyKind, 'ALIVE2_X_RESP')
    assert.ok(hidden.registered)
    const reqs = seen.map((b) => parseRequest(b)?.request)
    assert.equal(reqs[0], {
      kind: 'ALIVE2_REQ',
      port: 5001,
      nodeType: 72,
      protocol: 0,
      highestVersion: 6,
      lowestVersion: 6,
      name: 'h',
      extra: Buffer.alloc(0),
    })
    assert.is((reqs[1] as { nodeType: number }).nodeType, 77)
    assert.equal((reqs[1] as { extra: Buffer }).extra, Buffer.of(1))
    await hidden.close()
    await normal.close()
    assert.not.ok(hidden.registered)
  } finally {
    await fake.close()
  }
})

test('register accepts the 16-bit ALIVE2_RESP of an old EPMD, split at every offset', async () => {
  const bytes = encodeReply({ kind: 'ALIVE2_RESP', result: 0, creation: 3 })
  let split = 0
  const fake = await fakeEpmd(async (s) => {
    const at = split
    s.setNoDelay(true)
    s.write(bytes.subarray(0, at))
    await tick()
    s.write(bytes.subarray(at))
  })
  try {
    for (split = 0; split <= bytes.length; split++) {
      const r = await register({ name: 'old', port: 1, epmdPort: fake.port })
      assert.is(r.creation, 3)
      assert.is(r.replyKind, 'ALIVE2_RESP')
      await r.close()
    }
  } finally {
    await fake.close()
  }
})

test('a refused registration is EpmdRegisterError with the result', async () => {
  const fake = await fakeEpmd((s) => void s.end(encodeReply({ kind: 'ALIVE2_X_RESP', result: 1, creation: 99 })))
  try {
    const e = (await rejectsWith(
      register({ name: 'taken', port: 1, epmdPort: fake.port }),
      EpmdRegisterError,
      'ERR_EPMD_REGISTER',
    )) as EpmdRegisterError
    assert.is(e.result, 1)
    assert.is(e.nodeName, 'taken')
  } finally {
    await fake.close()
  }
})

test('bad arguments are EpmdArgumentError before any connection', async () => {
  await rejectsWith(register({ name: '', port: 1, epmdPort: 1 }), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
  await rejectsWith(register({ name: 'a', port: 65536, epmdPort: 1 }), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
  await rejectsWith(names('127.0.0.1', -5), EpmdArgumentError, 'ERR_EPMD_ARGUMENT')
  await rejectsWith(
    register({ name: 'a', port: 1, epmdPort: 1, minBackoff: 0 }),
    EpmdArgumentError,
    'ERR_EPMD_ARGUMENT',
  )
})

test('an injected connection carries the exchange (in-memory stream)', async () => {
  let written = Buffer.alloc(0)
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written = Buffer.concat([written, chunk])
      if (parseRequest(written)) {
        this.push(encodeReply(portReply).subarray(0, 3))
        setImmediate(() => {
          this.push(encodeReply(portReply).subarray(3))
          this.push(null)
        })
      }
      cb()
    },
  })
  const info = await portPlease('peer', 'mem', 1, { connect: () => stream })
  assert.equal(info, portReply.node)
  assert.equal(written, encodeRequest({ kind: 'PORT_PLEASE2_REQ', name: 'peer' }))
})

test('ERL_EPMD_PORT is the default EPMD port', async () => {
  const fake = await fakeEpmd((s) => void s.end(Buffer.of(0, 0, 0x11, 0x11)))
  const saved = process.env.ERL_EPMD_PORT
  process.env.ERL_EPMD_PORT = String(fake.port)
  try {
    assert.equal(await names(), [])
  } finally {
    if (saved === undefined) delete process.env.ERL_EPMD_PORT
    else process.env.ERL_EPMD_PORT = saved
    await fake.close()
  }
})

test.run()
