/**
 * <data>/dhcp (fixed hosts, relayed subnets): what `validate` refuses and warns about, with the
 * file's path and reason, and how the running appliance's loader follows changes (hot reload,
 * last good version). No root: the --iface segment is lo's (127.0.0.0/8).
 */
import test from 'ava';
import { validateCommand } from '../../src/commands/validate.ts';
import { ConfigError } from '../../src/config.ts';
import { DhcpSiteFiles, ownSegment } from '../../src/store/dhcp-files.ts';
import { dataDir, eventually, memoryLog, type DataDir } from './fixtures.ts';

async function validate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await validateCommand(args, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s), env: {} });
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

async function scratch(t: { teardown(fn: () => Promise<void>): void }, files: Record<string, string | object>): Promise<DataDir> {
  const dir = await dataDir({ 'boot/default.json': { kernel: '/images/linux' }, ...files });
  t.teardown(() => dir.cleanup());
  return dir;
}

const SUBNET_A = { subnet: '10.88.0.0/24', range: ['10.88.0.100', '10.88.0.150'], router: '10.88.0.1', dns: ['10.88.0.53'], leaseTime: 900 };

test('validate refuses, each with its path and reason: overlapping subnets, a range outside its subnet, an address taken twice, a host on no network we serve, a bad host name; warns of a host inside a pool range', async (t) => {
  const dir = await scratch(t, {
    'dhcp/subnets/a.json': SUBNET_A,
    'dhcp/subnets/b.json': { subnet: '10.88.0.128/25' },
    'dhcp/subnets/c.json': { subnet: '10.90.0.0/24', range: ['10.91.0.1', '10.91.0.9'] },
    'dhcp/subnets/d.json': { subnet: '10.92.0.0/24', range: ['10.92.0.9', '10.92.0.1'], mtu: 1500 },
    'dhcp/hosts/52-54-00-00-00-01.json': { ip: '10.88.0.120', hostname: 'in-range' },
    'dhcp/hosts/525400000002.json': { ip: '10.88.0.50', hostname: 'node2' },
    'dhcp/hosts/52:54:00:00:00:03.json': { ip: '10.88.0.50' },
    'dhcp/hosts/5254.0000.0004.json': { ip: '192.168.200.5' },
    'dhcp/hosts/52:54:00:00:00:05.json': { ip: '10.88.0.60', hostname: 'not_a_label' },
    'dhcp/hosts/not-a-mac.json': { ip: '10.88.0.61' },
  });
  const r = await validate(['--data-path', dir.root]);
  t.is(r.code, 1);
  const line = (file: string) => r.stderr.split('\n').find((l) => l.startsWith(`${dir.root}/dhcp/${file}: `)) ?? `(no line for ${file})`;
  t.regex(line('subnets/b.json'), /subnet 10\.88\.0\.128\/25 overlaps 10\.88\.0\.0\/24 of .*subnets\/a\.json/);
  t.regex(line('subnets/c.json'), /range\.0: 10\.91\.0\.1 is outside subnet 10\.90\.0\.0\/24/);
  t.regex(line('subnets/d.json'), /unrecognized key.*mtu|mtu/i);
  t.regex(line('subnets/d.json'), /10\.92\.0\.9 is after 10\.92\.0\.1/);
  t.regex(line('hosts/52:54:00:00:00:03.json'), /ip 10\.88\.0\.50 is already 52:54:00:00:00:02's \(.*525400000002\.json\)/);
  t.regex(line('hosts/5254.0000.0004.json'), /ip 192\.168\.200\.5 is outside every declared subnet/);
  t.regex(line('hosts/52:54:00:00:00:05.json'), /hostname: must be a DNS label/);
  t.regex(line('hosts/not-a-mac.json'), /file name is not a MAC address/);
  t.regex(r.stderr, /hosts\/52-54-00-00-00-01\.json: warning: ip 10\.88\.0\.120 is inside the pool range 10\.88\.0\.100-10\.88\.0\.150/);
  t.regex(r.stderr, /note: no --iface given, so fixed hosts were checked against the declared subnets only/);
  t.false(r.stderr.includes(`${dir.root}/dhcp/hosts/525400000002.json: `), 'the first holder of an address is fine');
  t.regex(r.stderr, /7 bad file\(s\)/);
});

test('validate --iface: a host on that segment is on a network we serve, a subnet overlapping it is refused; without --iface the same host is refused', async (t) => {
  const dir = await scratch(t, {
    'dhcp/subnets/a.json': SUBNET_A,
    'dhcp/hosts/52:54:00:00:00:10.json': { ip: '127.0.0.50', hostname: 'on-iface' },
    'dhcp/hosts/52:54:00:00:00:11.json': { ip: '10.88.0.130' },
  });
  const ok = await validate(['--data-path', dir.root, '--iface', 'lo']);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /dhcp: 2 fixed host\(s\), 1 subnet\(s\) beside 127\.0\.0\.0\/8 \(--iface lo\)/);
  t.regex(ok.stdout, /52:54:00:00:00:11\.json: warning: ip 10\.88\.0\.130 is inside the pool range/);
  t.notRegex(ok.stdout, /note: no --iface/);

  const without = await validate(['--data-path', dir.root]);
  t.is(without.code, 1);
  t.regex(without.stderr, /52:54:00:00:00:10\.json: ip 127\.0\.0\.50 is outside every declared subnet \(the --iface segment was not checked/);

  await dir.write('dhcp/subnets/b.json', { subnet: '127.0.0.0/16', range: ['127.0.1.1', '127.0.1.9'] });
  const overlap = await validate(['--data-path', dir.root, '--iface', 'lo']);
  t.is(overlap.code, 1);
  t.regex(overlap.stderr, /subnets\/b\.json: subnet 127\.0\.0\.0\/16 overlaps the 127\.0\.0\.0\/8 \(--iface lo\) segment/);

  await t.throwsAsync(validate(['--data-path', dir.root, '--iface', 'bca-nonesuch']), { instanceOf: ConfigError, message: /--iface: interface bca-nonesuch does not exist/ });
});

test('hot reload: a changed hosts file takes effect without restart; a broken one is logged with its path and reason while its last good version keeps serving; a removed one stops', async (t) => {
  const dir = await scratch(t, { 'dhcp/hosts/52:54:00:00:00:21.json': { ip: '127.0.0.21', hostname: 'node21' } });
  const { log, lines } = memoryLog();
  const files = new DhcpSiteFiles(dir.root, { log, own: ownSegment('lo', '127.0.0.1', '255.0.0.0', { start: '127.0.0.100', end: '127.0.0.199' }), pollIntervalMs: 200, debounceMs: 20 });
  let changes = 0;
  files.onChange(() => changes++);
  await files.open();
  t.teardown(() => files.close());
  t.deepEqual(
    files.current().hosts.map((h) => [h.mac, h.ip, h.hostname]),
    [['52:54:00:00:00:21', '127.0.0.21', 'node21']],
  );

  const file = await dir.write('dhcp/hosts/52:54:00:00:00:21.json', { ip: '127.0.0.22', hostname: 'node21' });
  await eventually(() => (files.current().hosts[0]?.ip === '127.0.0.22' ? true : undefined), 'the new address');
  t.true(changes >= 1);

  await dir.write('dhcp/hosts/52:54:00:00:00:21.json', '{"ip": "127.0.0.23", ');
  const broken = await eventually(() => lines.find((l) => l.path === file && typeof l.reason === 'string'), 'the broken file logged');
  t.regex(String(broken.msg), /broken dhcp file .*52:54:00:00:00:21\.json: not valid JSON.*last good version keeps serving/);
  t.is(broken.lastGoodServing, true);
  t.is(files.current().hosts[0]?.ip, '127.0.0.22', 'the last good version keeps serving');
  t.true(files.problems().some((p) => p.path === file && p.lastGoodServing === true));

  await dir.write('dhcp/hosts/52:54:00:00:00:22.json', { ip: '127.0.0.150' });
  await eventually(() => (files.current().hosts.length === 2 ? true : undefined), 'a new host file');
  await eventually(() => lines.find((l) => l.level === 40 && String(l.msg).includes('inside the pool range 127.0.0.100-127.0.0.199 (--dhcp-range)')), 'the warning');

  await dir.remove('dhcp/hosts/52:54:00:00:00:21.json');
  await eventually(() => (files.current().hosts.length === 1 ? true : undefined), 'the removed host gone');
  t.is(String(files.current().hosts[0]?.mac), '52:54:00:00:00:22');
});
