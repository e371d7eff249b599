/**
 * The etcd store over TLS (--store-ca, --store-cert, --store-key): a throwaway CA, a server
 * certificate for the member's address (SAN IP) and a client certificate, made by openssl in a
 * temp dir; one etcd-server member with --client-cert-auth and https client URLs, in its own
 * namespace. `store push` and an appliance (the CLI, HTTP only, in a namespace on the cluster's
 * bridge) use the certificates; without the client certificate the push must fail on its own,
 * saying what is wrong. Needs root, /usr/bin/etcd and openssl; skips otherwise.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliArgs, PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { canRunEtcd, ETCDCTL_BIN, etcdMemberAddress, startEtcdCluster, type EtcdCluster, type EtcdTls } from '../helpers/etcd-cluster.ts';
import { sh } from '../helpers/netns.ts';

const OPENSSL = '/usr/bin/openssl';
const maybe = canRunEtcd && existsSync(OPENSSL) ? test.serial : test.skip;
const PREFIX = 'tls';
const MAC = '52:54:00:c7:b6:64';
const DATA = path.join(PROJECT_ROOT, 'data');
/** Only a guard against a hung CLI, far above the store command's own 10 s timeout: the assertions are on how it exits. */
const KILL_AFTER_MS = 60_000;

let cluster: EtcdCluster | undefined;
let scratch: string;
let tls: EtcdTls & { otherCa: string };
let app: RunningAppliance | undefined;
let applianceUrl: string;

/**
 * A CA, the member's certificate (SAN: its IP) and a client certificate signed by it, and a
 * second CA that signed neither; each key beside its certificate (EC P-256: quick to make).
 */
async function makeCertificates(dir: string, memberAddress: string): Promise<EtcdTls & { otherCa: string }> {
  const f = (name: string) => path.join(dir, name);
  const newKey = (file: string) => sh(OPENSSL, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  for (const ca of ['ca', 'other-ca']) {
    await newKey(f(`${ca}.key`));
    await sh(OPENSSL, [
      'req',
      '-x509',
      '-new',
      '-key',
      f(`${ca}.key`),
      '-subj',
      `/CN=bca-etls throwaway ${ca}`,
      '-days',
      '1',
      '-out',
      f(`${ca}.pem`),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  const issue = async (name: string, cn: string, ext: string) => {
    await newKey(f(`${name}.key`));
    await sh(OPENSSL, ['req', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${cn}`, '-out', f(`${name}.csr`)]);
    await writeFile(f(`${name}.ext`), ext);
    await sh(OPENSSL, ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`)]);
  };
  await issue('server', 'etcd member', `subjectAltName=IP:${memberAddress}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
  await issue('client', 'bootcfg-appliance', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key'), otherCa: f('other-ca.pem') };
}

/** The CLI in the cluster's client namespace; `killed` says the guard had to end it (a hang). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string; killed: boolean }> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', cluster!.clientNs.name, process.execPath, ...cliArgs(args)],
      { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: KILL_AFTER_MS, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
        const code = e ? (typeof e.code === 'number' ? e.code : 1) : 0;
        resolve({ code, stdout, stderr, killed: e?.killed === true });
      },
    );
  });
}

const storeOpts = (withClientCert: boolean, ca = tls.ca) => [
  '--store',
  cluster!.storeUrl(PREFIX),
  '--store-ca',
  ca,
  ...(withClientCert ? ['--store-cert', tls.clientCert, '--store-key', tls.clientKey] : []),
];

test.before(async () => {
  if (!canRunEtcd || !existsSync(OPENSSL)) return;
  scratch = await mkdtemp(path.join(tmpdir(), 'bca-etls-'));
  tls = await makeCertificates(scratch, etcdMemberAddress(0));
  cluster = await startEtcdCluster({ tag: 'bca-etls', members: 1, tls });
});

test.after.always(async () => {
  await app?.stop();
  await cluster?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

maybe('the member speaks only https with a client certificate (the harness is what it claims)', async (t) => {
  t.regex(cluster!.clientUrls[0]!, /^https:\/\//);
  // Without a client certificate etcdctl itself is refused: the server really demands one.
  const bare = await cluster!
    .exec(ETCDCTL_BIN, ['--cacert', tls.ca, '--endpoints', cluster!.clientUrls[0]!, '--dial-timeout', '2s', '--command-timeout', '3s', 'endpoint', 'health'])
    .then(() => 'healthy')
    .catch((err: Error) => err.message);
  t.not(bare, 'healthy');
});

maybe('store push with --store-ca/--store-cert/--store-key puts data/ in etcd', async (t) => {
  const pushed = await cli(['store', 'push', DATA, ...storeOpts(true)]);
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stdout, /^pushed .* in one transaction/m);
  const keys = await cluster!.etcdctl(['get', '--prefix', '--keys-only', `/${PREFIX}/config/`]);
  t.regex(keys, new RegExp(`^/${PREFIX}/config/boot/mac/${MAC}\\.json$`, 'm'));
});

maybe('an appliance with the same options serves /ipxe from the TLS store', async (t) => {
  const ns = await cluster!.topo.namespace('ap');
  const { address } = await cluster!.attach(ns.name);
  applianceUrl = `http://${address}:8080`;
  const args = ['--address', `${address}:8080`, '--dhcp', 'off', '--tftp-address', 'off', '--data-path', path.join(scratch, 'appliance'), ...storeOpts(true)];
  app = await startAppliance(args, { ns });
  const out = await cluster!.exec('curl', ['-s', '--max-time', '3', '-w', '\n%{http_code}', `${applianceUrl}/ipxe?mac=${MAC}`]);
  const cut = out.lastIndexOf('\n');
  t.is(out.slice(cut + 1), '200', out);
  t.regex(out.slice(0, cut), /^#!ipxe/);
  t.regex(out.slice(0, cut), /priority=low/, 'the machine’s own config, read from etcd');
  t.is(await cluster!.exec('curl', ['-s', '--max-time', '3', `${applianceUrl}/healthz`]), 'ok\n');
});

maybe('store push with only --store-ca (no client certificate) exits non-zero on its own and names the certificate problem', async (t) => {
  const pushed = await cli(['store', 'push', DATA, ...storeOpts(false)]);
  t.false(pushed.killed, `the push hung until the test killed it; stderr: ${pushed.stderr}`);
  t.is(pushed.code, 1, pushed.stdout + pushed.stderr);
  t.regex(pushed.stderr, /^store push: etcd at \S+: TLS: the member demands a client certificate .*give --store-cert and --store-key \(.*bad certificate/m);
  t.log(pushed.stderr.trim());
});

maybe('store push with a CA that did not sign the member’s certificate exits non-zero on its own and says so', async (t) => {
  const pushed = await cli(['store', 'push', DATA, ...storeOpts(true, tls.otherCa)]);
  t.false(pushed.killed, `the push hung until the test killed it; stderr: ${pushed.stderr}`);
  t.is(pushed.code, 1, pushed.stdout + pushed.stderr);
  t.regex(pushed.stderr, new RegExp(`^store push: etcd at \\S+: TLS: the member's certificate does not check against --store-ca ${tls.otherCa} \\(`, 'm'));
  t.log(pushed.stderr.trim());
});
