// Throwaway certificates for the TLS distribution tests, made with the openssl CLI (Node cannot issue
// X.509 certificates by itself): a CA, and node certificates it signs for this host (its short name,
// localhost, 127.0.0.1), usable as server and as client certificates — as inet_tls_dist needs them.
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { MissingToolError, shortHost, tempDir } from './harness.js'

const execFileP = promisify(execFile)

export interface CertFiles {
  cert: string
  key: string
}

export interface TestPki {
  dir: string
  /** The CA certificate every trusted node certificate chains to. */
  ca: string
  /** Issues a certificate signed by the CA (`trusted`) or by a CA of its own nobody trusts. */
  issue(name: string, opts?: { untrusted?: boolean; hosts?: string[] }): Promise<CertFiles>
}

export async function requireOpenssl(): Promise<void> {
  try {
    await execFileP('openssl', ['version'])
  } catch {
    throw new MissingToolError(
      'openssl is not installed: the TLS distribution tests make throwaway certificates with it. ' +
        'Install it with `apt-get install -y openssl` (scripts/test.sh can do so when run as root).',
    )
  }
}

const openssl = (args: string[], cwd: string) => execFileP('openssl', args, { cwd })

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const key = path.join(dir, `${name}.key`)
  const cert = path.join(dir, `${name}.pem`)
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir)
  await openssl(['req', '-x509', '-new', '-key', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-sha256'], dir)
  return { cert, key }
}

/** A fresh CA in a temp dir (removed by the harness's cleanup). */
export async function makePki(): Promise<TestPki> {
  await requireOpenssl()
  const dir = tempDir('ts-cnode-pki-')
  const ca = await makeCa(dir, 'ts-cnode-test-ca')
  let rogue: { cert: string; key: string } | undefined
  return {
    dir,
    ca: ca.cert,
    async issue(name, opts = {}) {
      const signer = opts.untrusted ? (rogue ??= await makeCa(dir, 'ts-cnode-rogue-ca')) : ca
      const key = path.join(dir, `${name}.key`)
      const csr = path.join(dir, `${name}.csr`)
      const cert = path.join(dir, `${name}.pem`)
      const ext = path.join(dir, `${name}.ext`)
      const hosts = opts.hosts ?? [shortHost, 'localhost']
      writeFileSync(
        ext,
        [
          `subjectAltName=${[...hosts.map((h) => `DNS:${h}`), 'IP:127.0.0.1'].join(',')}`,
          'basicConstraints=CA:FALSE',
          'keyUsage=digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
        ].join('\n') + '\n',
      )
      await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir)
      await openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${name}`], dir)
      await openssl(
        ['x509', '-req', '-in', csr, '-CA', signer.cert, '-CAkey', signer.key, '-CAcreateserial', '-out', cert, '-days', '2', '-sha256', '-extfile', ext],
        dir,
      )
      return { cert, key }
    },
  }
}

/** An -ssl_dist_optfile for erl: both roles present `node`, trust `ca`, verify the peer. */
export function erlSslOptFile(dir: string, name: string, node: CertFiles, ca: string, opts: { failIfNoPeerCert?: boolean; verify?: boolean } = {}): string {
  const file = path.join(dir, `${name}.ssl_dist.conf`)
  const q = (s: string) => JSON.stringify(s)
  const verify = opts.verify === false ? 'verify_none' : 'verify_peer'
  const common = `{certfile, ${q(node.cert)}}, {keyfile, ${q(node.key)}}, {cacertfile, ${q(ca)}}, {verify, ${verify}}, {secure_renegotiate, true}`
  writeFileSync(
    file,
    `[{server, [${common}, {fail_if_no_peer_cert, ${opts.failIfNoPeerCert ? 'true' : 'false'}}]},\n {client, [${common}]}].\n`,
  )
  return file
}
