/**
 * --ipv6-ra-quench against a real client nobody here wrote (rdisc6 from Debian's ndisc6),
 * in namespaces this test creates: the appliance's namespace has two links, eth0 (the boot
 * LAN, with a client) and eth1 (another segment, with a bystander). A solicitation on eth0 is
 * answered with an RA of hop limit 255 and router lifetime 0 (seen by tcpdump on the client);
 * nothing reaches eth1, not even the bystander's own solicitation.
 *
 * Without the flag (auto, full mode's default) it quenches only where no IPv6 router
 * advertises: a stand-in router (test/helpers/ipv6-router.ts, real RAs from a raw socket in
 * the client's namespace) present at start keeps it silent, one appearing later stops it.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, sh, Topology, waitFor, type Namespace } from '../helpers/netns.ts';
import { cliArgs, PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';

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

/** A segment of two: the appliance's namespace and the client's, link-locals out of DAD. */
async function segment(t: { teardown(fn: () => unknown): void }) {
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const srv = await topo.namespace('srv');
  const cli = await topo.namespace('cli');
  await topo.veth(srv, 'eth0', cli, 'eth0', `${SERVER}/24`);
  for (const ns of [srv, cli]) await waitFor(`${ns.name}/eth0 link-local out of DAD`, () => linkLocalReady(ns, 'eth0'), 10_000, 100);
  const serverMac = (await srv.ip('-br', 'link', 'show', 'dev', 'eth0')).trim().split(/\s+/)[2]!.toLowerCase();
  return { srv, cli, serverMac };
}

/** The appliance in full mode on srv/eth0 with `extra` flags (none: the default, auto). */
async function startFull(t: { teardown(fn: () => unknown): void }, srv: Namespace, extra: string[]): Promise<RunningAppliance> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-ra-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const args = ['--iface', 'eth0', '--address', `${SERVER}:8080`, '--data-path', dir, '--firmware-path', path.join(PROJECT_ROOT, 'firmware'), '--tftp-address', 'off'];
  const app = await startAppliance([...args, '--dhcp', 'full', '--dhcp-range', '10.78.0.100,10.78.0.110', ...extra], { ns: srv });
  t.teardown(() => app.stop());
  return app;
}

/** The stand-in router in ns (real RAs of router lifetime 1800 every 300 ms and on each solicitation), once advertising. */
async function startRouter(ns: Namespace) {
  const child = ns.spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'test/helpers/ipv6-router.ts'), 'eth0', '1800', '300'], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  await waitFor('the stand-in router to advertise', () => out.includes('advertising') || child.exitCode !== null, 20_000);
  if (child.exitCode !== null) throw new Error(`ipv6-router exited: ${out}`);
  return child;
}

const msgMatches = (re: RegExp) => (l: Record<string, unknown>) => typeof l.msg === 'string' && re.test(l.msg);

maybe('[root] full mode, no flag, no IPv6 router: it says it looks first, then quenches (rdisc6 gets router lifetime 0); a router appearing later stops it', async (t) => {
  const { srv, cli, serverMac } = await segment(t);
  const app = await startFull(t, srv, []);
  await app.waitForLog(msgMatches(/^ipv6-ra-quench auto: looking for an IPv6 router on eth0/));
  await app.waitForLog(msgMatches(/^ipv6-ra-quench auto: no IPv6 router advertised on eth0 within 4 s: quenching/));

  const answered = await rdisc6(cli, ['-1', '-r', '3', '-w', '1000', 'eth0']);
  t.is(answered.code, 0, answered.out);
  t.regex(answered.out, /Router lifetime\s*:\s*0 \(0x0+\) seconds/);
  t.true(answered.out.toLowerCase().includes(serverMac), `from the appliance (${serverMac}): ${answered.out}`);

  const router = await startRouter(cli);
  const stopped = await app.waitForLog(msgMatches(/^ipv6-ra-quench auto: stopped quenching on eth0: an IPv6 router began advertising there/));
  t.is(stopped.level, 40);
  t.is(stopped.routerLifetime, 1800);
  t.regex(String(stopped.router), /^fe80::/);
  router.kill('SIGTERM');

  // rdisc6 in the router's own namespace does not hear that router (no multicast loop): what it could hear is only ours.
  const after = await rdisc6(cli, ['-1', '-r', '2', '-w', '1000', 'eth0']);
  t.not(after.code, 0, `the appliance answered after a router appeared: ${after.out}`);
});

maybe('[root] full mode, no flag, an IPv6 router on the segment: not quenched, and the log says which router', async (t) => {
  const { srv, cli } = await segment(t);
  await startRouter(cli);
  const capture = captureRas(cli, 'eth0');
  await capture.listening();
  const app = await startFull(t, srv, []);
  const why = await app.waitForLog(msgMatches(/^ipv6-ra-quench auto: not quenching on eth0: an IPv6 router advertises there/));
  t.is(why.routerLifetime, 1800);
  t.regex(String(why.router), /^fe80::/);

  const asked = await rdisc6(cli, ['-1', '-r', '2', '-w', '1000', 'eth0']);
  t.not(asked.code, 0, `the appliance answered beside a router: ${asked.out}`);
  await new Promise((r) => setTimeout(r, 4500)); // past the listening window: still nothing from us
  const wire = await capture.stop();
  t.regex(wire, /router lifetime 1800s/, 'the stand-in router was on the wire');
  t.notRegex(wire, /router lifetime 0s/, `no quench RA on the wire: ${wire}`);
  t.false(app.lines.some(msgMatches(/no IPv6 router advertised/)));
});

maybe('[root] --ipv6-ra-quench on beside a router: quenches anyway and warns; --ipv6-ra-quench off: never answers, and says so', async (t) => {
  const { srv, cli, serverMac } = await segment(t);
  await startRouter(cli);
  const forced = await startFull(t, srv, ['--ipv6-ra-quench', 'on']);
  await forced.waitForLog(msgMatches(/^ipv6-ra-quench: answering IPv6 router solicitations on eth0.*forced on/));
  const answered = await rdisc6(cli, ['-1', '-r', '3', '-w', '1000', 'eth0']);
  t.is(answered.code, 0, answered.out);
  t.regex(answered.out, /Router lifetime\s*:\s*0 \(0x0+\) seconds/);
  t.true(answered.out.toLowerCase().includes(serverMac));
  const warned = await forced.waitForLog(msgMatches(/another IPv6 router advertises on eth0.*forced on/));
  t.is(warned.level, 40);
  await forced.stop();

  const { srv: srv2, cli: cli2 } = await segment(t);
  const off = await startFull(t, srv2, ['--ipv6-ra-quench=off']);
  await off.waitForLog(msgMatches(/^ipv6-ra-quench: off \(--ipv6-ra-quench off\)/));
  await new Promise((r) => setTimeout(r, 500));
  const silent = await rdisc6(cli2, ['-1', '-r', '2', '-w', '1000', 'eth0']);
  t.not(silent.code, 0, `answered although off: ${silent.out}`);
  t.false(off.lines.some(msgMatches(/^ipv6-ra-quench auto/)));
});
