// The ts-cnode node the drivers benchmark measures, as its own OS process: a Node with the
// some_driver_NN pool. Prints "READY <node>" once registered; SIGTERM stops it.
import { Node } from '../src/node.js'
import { silentLogger } from '../src/logger.js'
import { startDrivers } from '../src/drivers/driver.js'

const name = process.env.BENCH_TS_NAME ?? 'bench_drivers'
const node = new Node({
  name,
  cookie: process.env.BENCH_COOKIE,
  epmdPort: process.env.ERL_EPMD_PORT ? Number(process.env.ERL_EPMD_PORT) : undefined,
  logger: silentLogger,
})
await node.start()
const drivers = await startDrivers(node, { count: 16 })
process.stdout.write(`READY ${node.name.name}\n`)

const stop = async () => {
  await drivers.stop()
  await node.stop()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
