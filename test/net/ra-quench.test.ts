/**
 * --ipv6-ra-quench against a real client nobody here wrote (rdisc6 from Debian's ndisc6),
 * in namespaces this test creates: the appliance's namespace has two links, eth0 (the boot
 * LAN, with a client) and eth1 (another segment, with a bystander). A solicitation on eth0 is
 * answered with an RA of hop limit 255 and router lifetime 0 (seen by tcpdump on the client);
 * nothing reaches eth1, not even the bystander's own solicitation.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, sh, Topology, waitFor, type Namespace } from '../helpers/netns.ts';
import { cliArgs, PROJECT_ROOT, startAppliance } from '../helpers/appliance.ts';

const maybe = isRoot ? test.serial : test.skip;

/** rdisc6 in ns: exit code and everything it printed (it reports a timeout on stdout). */
function rdisc6(ns: Namespace, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns.name, 'rdisc6', ...args], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}
const SERVER = '10.78.0.1';

async function linkLocalReady(ns: Namespace, dev: string): Promise<boolean> {
  const out = await ns.ip('-6', 'addr', 'show', 'dev', dev, 'scope', 'link');
  return out.includes('fe80:') && !out.includes('tentative');
}

/** Captures ICMPv6 RAs (type 134) on ns/dev with tcpdump -v, until stopped. */
function captureRas(ns: Namespace, dev: string) {
  const child = ns.spawn('tcpdump', ['-l', '-n', '-v', '-i', dev, 'icmp6 and ip6[40] == 134']);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    listening: () => waitFor('tcpdump to listen', () => err.includes('listening on')),
    text: () => out,
    async stop() {
      child.kill('SIGINT');
      await exited;
      return out;
    },
  };
}

maybe('[root] --ipv6-ra-quench: rdisc6 on the boot LAN gets an RA with hop limit 255 and router lifetime 0; nothing reaches another interface', async (t) => {
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const srv = await topo.namespace('srv');
  const cli = await topo.namespace('cli');
  const other = await topo.namespace('oth');
  await topo.veth(srv, 'eth0', cli, 'eth0', `${SERVER}/24`);
  await topo.veth(srv, 'eth1', other, 'eth0', '10.79.0.1/24');
  for (const [ns, dev] of [
    [srv, 'eth0'],
    [srv, 'eth1'],
    [cli, 'eth0'],
    [other, 'eth0'],
  ] as const) {
    await waitFor(`${ns.name}/${dev} link-local out of DAD`, () => linkLocalReady(ns, dev), 10_000, 100);
  }

  const dir = await mkdtemp(path.join(tmpdir(), 'bca-ra-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const app = await startAppliance(
    [
      '--iface',
      'eth0',
      '--address',
      `${SERVER}:8080`,
      '--data-path',
      dir,
      '--firmware-path',
      path.join(PROJECT_ROOT, 'firmware'),
      '--tftp-address',
      'off',
      '--dhcp',
      'full',
      '--dhcp-range',
      '10.78.0.100,10.78.0.110',
      '--ipv6-ra-quench',
    ],
    { ns: srv },
  );
  t.teardown(async () => {
    await app.stop();
  });
  await app.waitForLog((l) => l.msg !== undefined && String(l.msg).startsWith('ipv6-ra-quench: answering'));

  const onLan = captureRas(cli, 'eth0');
  const onOther = captureRas(other, 'eth0');
  await onLan.listening();
  await onOther.listening();

  // The bystander solicits first: with nothing answering on its segment rdisc6 gives up.
  const bystander = await rdisc6(other, ['-1', '-r', '1', '-w', '1500', 'eth0']);
  t.not(bystander.code, 0, `a router advertisement reached the other segment: ${bystander.out}`);
  t.regex(bystander.out, /Soliciting ff02::2/, `rdisc6 ran on the other segment: ${bystander.out}`);
  t.notRegex(bystander.out, /Router lifetime/);

  const answered = await rdisc6(cli, ['-1', '-r', '3', '-w', '1000', 'eth0']);
  t.is(answered.code, 0, answered.out);
  const ra = answered.out;
  t.regex(ra, /Router lifetime\s*:\s*0 \(0x0+\) seconds/);
  t.regex(ra, /Stateful address conf\.\s*:\s*No/);
  t.notRegex(ra, /Prefix\s*:/, 'a quench RA carries no prefix');
  const serverMac = (await srv.ip('-br', 'link', 'show', 'dev', 'eth0')).trim().split(/\s+/)[2]!;
  t.true(ra.toLowerCase().includes(serverMac.toLowerCase()), `source link-layer option names eth0's MAC ${serverMac}: ${ra}`);
  t.regex(ra, /from fe80::/, 'sent from a link-local address');

  await waitFor('the RA in the client capture', () => /router advertisement/.test(onLan.text()), 5000);
  const lanText = await onLan.stop();
  const otherText = await onOther.stop();
  t.regex(lanText, /hlim 255/, `hop limit 255 on the wire: ${lanText}`);
  t.regex(lanText, /fe80::[0-9a-f:]+ > ff02::1: .*router advertisement/);
  t.regex(lanText, /router lifetime 0s/);
  t.is(otherText.trim(), '', 'no RA on the other interface');

  await app.waitForLog((l) => l.step === 'ipv6.router-solicitation');
  await app.waitForLog((l) => l.step === 'ipv6.router-advert' && l.trigger === 'solicitation');
  const metrics = await sh('ip', ['netns', 'exec', srv.name, 'curl', '-s', `http://${SERVER}:8080/metrics`]);
  t.regex(metrics, /bootcfg_ipv6_router_adverts_total\{trigger="solicitation"\} [1-9]/);
});

maybe('[root] --ipv6-ra-quench without CAP_NET_RAW: the appliance refuses to start and says what it needs', async (t) => {
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const srv = await topo.namespace('srv');
  const cli = await topo.namespace('cli');
  await topo.veth(srv, 'eth0', cli, 'eth0', `${SERVER}/24`);
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-ra-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Root stripped to the unit's capability set (the kernel grants root nothing beyond its bounding set).
  const caps = '-all,+net_bind_service';
  const args = cliArgs([
    '--log-format',
    'json',
    '--iface',
    'eth0',
    '--address',
    `${SERVER}:8080`,
    '--data-path',
    dir,
    '--firmware-path',
    path.join(PROJECT_ROOT, 'firmware'),
    '--tftp-address',
    'off',
    '--dhcp',
    'full',
    '--dhcp-range',
    '10.78.0.100,10.78.0.110',
    '--ipv6-ra-quench',
  ]);
  const result = await sh('ip', ['netns', 'exec', srv.name, 'setpriv', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${caps}`, '--no-new-privs', process.execPath, ...args]).then(
    (out) => ({ code: 0, out }),
    (err: Error) => ({ code: 1, out: err.message }),
  );
  t.is(result.code, 1, result.out);
  t.regex(result.out, /CAP_NET_RAW/);
});
