// Distribution over TLS against real erl nodes started with `-proto_dist inet_tls -ssl_dist_optfile F`:
// ping and a message each way, in both directions of connection; certificates verified both ways; client
// certificates required when asked; a peer whose certificate chains to a CA we do not trust is refused
// (and erl refuses us when ours is not trusted). The certificates are made for the test by openssl.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { cleanup, Epmd, ErlNode, shortHost } from './harness.js'
import { erlSslOptFile, makePki, type CertFiles, type TestPki } from './certs.js'
import { Node } from '../src/node.js'
import { atom, Pid, Tuple, tuple } from '../src/etf/terms.js'
import type { DistTlsOptions } from '../src/dist/manager.js'
import { silentLogger, type Logger } from '../src/logger.js'
import { instructions, parseArgs, run, UsageError } from '../src/cli.js'

const COOKIE = 'ts_cnode_tls_cookie'
let epmd: Epmd
let pki: TestPki
let tsCert: CertFiles
let erlCert: CertFiles
let rogueCert: CertFiles
const nodes: Node[] = []
let uniq = 0
const uname = (b: string) => `${b}${process.pid % 10000}x${uniq++}`

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = []
  const rec = (level: string) => (m: string) => void lines.push(`${level}: ${m}`)
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

function tlsOpts(c: CertFiles, extra: Partial<DistTlsOptions> = {}): DistTlsOptions {
  return { cert: readFileSync(c.cert), key: readFileSync(c.key), ca: readFileSync(pki.ca), ...extra }
}

async function tsNode(tls: DistTlsOptions) {
  const logs = recorder()
  const node = new Node({ name: uname('tlsts'), cookie: COOKIE, epmdPort: epmd.port, tls, logger: logs })
  await node.start()
  nodes.push(node)
  // Answers {FromPid, ...} with {echo, Message}; on {FromPid, greet, BoxName} also sends {from_ts, hello} to
  // the registered BoxName on the sender's node (a REG_SEND from TypeScript to erl).
  node.spawn(
    async (self) => {
      for await (const m of self.mailbox) {
        if (!(m instanceof Tuple) || !(m.get(0) instanceof Pid)) continue
        const from = m.get(0) as Pid
        if (m.length === 3 && m.get(1) === atom('greet')) self.send({ name: m.get(2) as never, node: from.node }, tuple(atom('from_ts'), atom('hello')))
        self.send(from, tuple(atom('echo'), m))
      }
    },
    { name: 'ts_echo' },
  )
  return { node, logs, full: node.name.name }
}

function erlTls(name: string, cert: CertFiles, opts: { failIfNoPeerCert?: boolean; noClientCert?: boolean } = {}) {
  const file = erlSslOptFile(pki.dir, name, cert, pki.ca, { failIfNoPeerCert: opts.failIfNoPeerCert })
  if (opts.noClientCert) {
    // The client role without a certificate: only the CA to check the server.
    const text = readFileSync(file, 'utf8').replace(/\{client, \[[^\]]*\]\}/, `{client, [{cacertfile, ${JSON.stringify(pki.ca)}}, {verify, verify_peer}]}`)
    writeFileSync(file, text)
  }
  return ErlNode.start({ name, cookie: COOKIE, epmdPort: epmd.port, args: ['-proto_dist', 'inet_tls', '-ssl_dist_optfile', file] })
}


/** erl: register a box, ask the TS echo to greet it, and return what arrives in the box and the echo. */
const exchange = (tsFull: string) =>
  `register(box, self()), {ts_echo, '${tsFull}'} ! {self(), greet, box}, ` +
  `A = receive {from_ts, X} -> X after 10000 -> no_greeting end, ` +
  `B = receive {echo, {_, greet, box}} -> echoed after 10000 -> no_echo end, unregister(box), {A, B}`

test.before(async () => {
  epmd = await Epmd.start()
  pki = await makePki()
  tsCert = await pki.issue('tsnode')
  erlCert = await pki.issue('erlnode')
  rogueCert = await pki.issue('rogue', { untrusted: true })
})

test.after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await cleanup()
})

test('erl -> TS over TLS: erl pings, sends, and gets a message back; client certificates required and verified', async () => {
  const { node, full } = await tsNode(tlsOpts(tsCert, { requireClientCert: true }))
  const erlName = uname('tlse')
  const erl = await erlTls(erlName, erlCert, { failIfNoPeerCert: true })
  assert.is(await erl.eval(`net_adm:ping('${full}')`), 'pong')
  assert.is(await erl.eval(exchange(full)), '{hello,echoed}')
  // The connection was made by erl (incoming here), and it is TLS on the wire: erl's #net_address{} says so.
  assert.is(await erl.eval(`{ok, I} = net_kernel:node_info('${full}'), element(4, proplists:get_value(address, I))`), 'tls')
  assert.equal(node.nodes().map(String), [`${erlName}@${shortHost}`])
  await erl.stop()
})

test('TS -> erl over TLS: the TS node connects (verifying erl\'s certificate and host), pings, and messages flow both ways', async () => {
  const { node, full } = await tsNode(tlsOpts(tsCert))
  const erlName = uname('tlse')
  const erl = await erlTls(erlName, erlCert, { failIfNoPeerCert: true })
  const peer = `${erlName}@${shortHost}`
  assert.is(await node.ping(peer), 'pong')
  // A message from TS to an erl process, and its answer back.
  const reply = await node.withProcess(async (self) => {
    await erl.eval(`register(tlsbox, spawn(fun() -> receive {From, Msg} -> From ! {got, Msg} end end))`)
    self.send({ name: 'tlsbox', node: peer }, tuple(self.pid, atom('over_tls')))
    return self.receive((m) => m instanceof Tuple && m.get(0) === atom('got'), { timeout: 10_000 })
  })
  assert.ok(reply instanceof Tuple && reply.get(1) === atom('over_tls'))
  assert.is(await erl.eval(exchange(full)), '{hello,echoed}')
  assert.is(await erl.eval(`{ok, I} = net_kernel:node_info('${full}'), element(4, proplists:get_value(address, I))`), 'tls')
  await erl.stop()
})

test('a peer whose certificate chains to an untrusted CA is refused, in both directions', async () => {
  const { node, logs, full } = await tsNode(tlsOpts(tsCert))
  const erlName = uname('rogue')
  const rogue = await erlTls(erlName, rogueCert)
  // erl presents the rogue certificate as a client: our TLS listener refuses it.
  assert.is(await rogue.eval(`net_adm:ping('${full}')`), 'pang')
  assert.ok(
    logs.lines.some((l) => /TLS connection from .* refused/.test(l)),
    `no refusal logged:\n${logs.lines.join('\n')}`,
  )
  // We connect to it: its server certificate does not verify, so the connection is never made.
  assert.is(await node.ping(`${erlName}@${shortHost}`), 'pang')
  assert.ok(
    logs.lines.some((l) => /connection to .* failed: .*TLS/.test(l)),
    `no TLS failure logged:\n${logs.lines.join('\n')}`,
  )
  assert.equal(node.nodes(), [])
  await rogue.stop()
})

test('verify: false accepts a peer whose certificate does not verify (encryption without authentication)', async () => {
  const { full } = await tsNode(tlsOpts(tsCert, { verify: false }))
  const rogue = await erlTls(uname('rogue'), rogueCert)
  assert.is(await rogue.eval(`net_adm:ping('${full}')`), 'pong')
  await rogue.stop()
})

test('erl refuses a TS node with an untrusted certificate; a node without a client certificate is refused when one is required', async () => {
  const { node: rogueTs } = await tsNode(tlsOpts(rogueCert))
  const erlName = uname('tlse')
  const erl = await erlTls(erlName, erlCert, { failIfNoPeerCert: true })
  assert.is(await rogueTs.ping(`${erlName}@${shortHost}`), 'pang')
  assert.is(await erl.eval(`net_adm:ping('${rogueTs.name.name}')`), 'pang')

  const { logs, full } = await tsNode(tlsOpts(tsCert, { requireClientCert: true }))
  const anon = await erlTls(uname('anon'), erlCert, { noClientCert: true })
  assert.is(await anon.eval(`net_adm:ping('${full}')`), 'pang')
  assert.ok(logs.lines.some((l) => /TLS connection from .* refused/.test(l)), logs.lines.join('\n'))
  await erl.stop()
  await anon.stop()
})

test('the CLI flags: --tls-cert/--tls-key/--tls-ca start a TLS node that erl reaches; a missing one is a usage error', async () => {
  assert.throws(() => parseArgs(['--tls-cert', tsCert.cert, '--tls-ca', pki.ca], {}), (e: unknown) => e instanceof UsageError)
  const name = uname('tlscli')
  const opts = parseArgs(
    ['-sname', name, '-setcookie', COOKIE, '--epmd-port', String(epmd.port), '--db', 'none', '--drivers', '1',
     '--tls-cert', tsCert.cert, '--tls-key', tsCert.key, '--tls-ca', pki.ca, '--tls-require-client-cert'],
    {},
  )
  const running = await run(opts, silentLogger)
  try {
    // The banner's erl line is for TLS: an erl started with exactly its flags (the optfile as the banner
    // describes it) reaches the node.
    const banner = instructions(running.node, opts, undefined, undefined)
    const flags = /erl -sname demo -setcookie "\$COOKIE"( -proto_dist inet_tls -ssl_dist_optfile (\S+))/.exec(banner)
    assert.ok(flags, banner)
    assert.match(banner, new RegExp(`cacertfile, "${pki.ca.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`))
    // The optfile where the banner says, as it says (erl run in that directory, the flags as printed).
    const dir = mkdtempSync(path.join(tmpdir(), 'ts-cnode-banner-'))
    copyFileSync(erlSslOptFile(pki.dir, uname('banner'), erlCert, pki.ca), path.join(dir, flags![2]))
    const byBanner = await ErlNode.start({ name: uname('bnr'), cookie: COOKIE, epmdPort: epmd.port, cwd: dir, args: flags![1].trim().split(' ') })
    try {
      assert.is(await byBanner.eval(`net_adm:ping('${running.node.name.name}')`), 'pong')
    } finally {
      await byBanner.stop()
      rmSync(dir, { recursive: true, force: true })
    }
    const erl = await erlTls(uname('tlse'), erlCert, { failIfNoPeerCert: true })
    assert.is(await erl.eval(`net_adm:ping('${running.node.name.name}')`), 'pong')
    assert.is(await erl.eval(`gen_server:call({some_driver_01, '${running.node.name.name}'}, whoami)`), 'some_driver_01')
    const anon = await erlTls(uname('anon'), erlCert, { noClientCert: true })
    assert.is(await anon.eval(`net_adm:ping('${running.node.name.name}')`), 'pang')
    await erl.stop()
    await anon.stop()
  } finally {
    await running.stop()
  }
})

test.run()
