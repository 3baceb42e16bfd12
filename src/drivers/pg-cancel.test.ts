// The CancelRequest on the wire, against stand-in servers (a real server's cancel is in
// integration/drivers.test.ts): its 16 bytes, over TCP and a Unix socket, and what a failed attempt gives.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { CANCEL_REQUEST_CODE, cancelRequestMessage, sendCancelRequest } from './pg-cancel.js'

/** A server that reads one CancelRequest (16 bytes), records it and closes, as the postmaster does. */
function postmaster(listen: (s: net.Server) => void): Promise<{ server: net.Server; got: Promise<Buffer> }> {
  let resolveGot!: (b: Buffer) => void
  const got = new Promise<Buffer>((r) => (resolveGot = r))
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0)
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (buf.length >= 16) {
        resolveGot(buf)
        sock.destroy()
      }
    })
  })
  return new Promise((r) => {
    server.once('listening', () => r({ server, got }))
    listen(server)
  })
}

test('the message: length 16, the cancel code, the process ID and the secret key (a negative key too)', () => {
  const m = cancelRequestMessage(4242, -123456789)
  assert.is(m.length, 16)
  assert.equal([m.readInt32BE(0), m.readInt32BE(4), m.readInt32BE(8), m.readInt32BE(12)], [16, CANCEL_REQUEST_CODE, 4242, -123456789])
  assert.is(CANCEL_REQUEST_CODE, (1234 << 16) | 5678)
})

test('over TCP: delivered, and true once the server has closed the connection', async () => {
  const { server, got } = await postmaster((s) => s.listen(0, '127.0.0.1'))
  try {
    const port = (server.address() as net.AddressInfo).port
    assert.is(await sendCancelRequest({ host: '127.0.0.1', port }, 77, 88), true)
    assert.equal(await got, cancelRequestMessage(77, 88))
  } finally {
    server.close()
  }
})

test('over a Unix socket: <dir>/.s.PGSQL.<port>, as libpq names it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ts-cnode-cancel-'))
  const { server, got } = await postmaster((s) => s.listen(path.join(dir, '.s.PGSQL.6543')))
  try {
    assert.is(await sendCancelRequest({ host: dir, port: 6543 }, 5, 6), true)
    assert.equal(await got, cancelRequestMessage(5, 6))
  } finally {
    server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('nobody listening: false; a server that never closes: false after the timeout', async () => {
  const free = net.createServer()
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r))
  const port = (free.address() as net.AddressInfo).port
  await new Promise<void>((r) => free.close(() => r()))
  assert.is(await sendCancelRequest({ host: '127.0.0.1', port }, 1, 2), false)

  const held: net.Socket[] = []
  const silent = net.createServer((s) => void held.push(s))
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  try {
    const t0 = Date.now()
    assert.is(await sendCancelRequest({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port }, 1, 2, 200), false)
    assert.ok(Date.now() - t0 >= 150, 'it waited for the timeout')
  } finally {
    for (const s of held) s.destroy()
    silent.close()
  }
})

test.run()
