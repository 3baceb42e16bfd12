// A bare Node.js TCP echo server, no Erlang: the Node.js side of the floor measurement (bench/floor.ts).
// Written as any Node.js program echoes: 'data' events, one write per read, TCP_NODELAY as the distribution
// sets it. Listens on 127.0.0.1 (an ephemeral port), prints "READY <port>", stops at the end of stdin.
import * as net from 'node:net'

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk) => socket.write(chunk))
  socket.on('error', () => socket.destroy())
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY ${(server.address() as net.AddressInfo).port}\n`)
})
process.stdin.on('data', () => {})
process.stdin.on('end', () => process.exit(0))
