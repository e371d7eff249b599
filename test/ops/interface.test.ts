/**
 * --iface whose link is down when the appliance starts (a bridge whose only port is a VM's tap
 * before the VM starts, docker0 with no container), flaps later, or changes address. All in
 * namespaces this test creates; busybox udhcpc is the client.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cliArgs, PROJECT_ROOT, startAppliance } from '../helpers/appliance.ts';
import { isRoot, Topology, type Namespace } from '../helpers/netns.ts';

const maybe = isRoot ? test.serial : test.skip;
const run = promisify(execFile);

/** One DHCP exchange by udhcpc: true when it got a lease within a few seconds. */
async function leased(ns: Namespace): Promise<boolean> {
  try {
    await ns.exec('busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '4', '-T', '1', '-A', '1', '-s', '/bin/true']);
    return true;
  } catch {
    return false;
  }
}

maybe('--iface on a bridge with no port up: starts, says so, answers once a port comes up, and across a flap (needs root)', async (t) => {
  t.timeout(120_000);
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const srv = await topo.namespace('lnk');
  await topo.bridge(srv, 'br0', '10.97.0.1/24');
  // The bridge's only port is there but its far end is not up yet (a VM's tap before the VM
  // starts): the bridge has no carrier.
  const client = await topo.namespace('lnkc');
  await topo.veth(client, 'eth0', srv, 'p0');
  await client.ip('link', 'set', 'eth0', 'down');
  await topo.enslave(srv, 'p0', 'br0');
  const noCarrier = async () => (await srv.exec('cat', ['/sys/class/net/br0/carrier']).catch(() => '0')).trim() === '0';
  for (let i = 0; i < 50 && !(await noCarrier()); i++) await new Promise((r) => setTimeout(r, 100));
  const data = await mkdtemp(path.join(tmpdir(), 'bca-link-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startAppliance(['--iface', 'br0', '--dhcp', 'full', '--dhcp-range', '10.97.0.100,10.97.0.110', '--address', '10.97.0.1:8080', '--data-path', data, '--tftp-address', 'off'], {
    ns: srv,
  });
  t.teardown(() => app.stop());
  const down = await app.waitForLog((l) => /interface br0 is .*no carrier.*serving on it anyway/.test(String(l.msg)));
  t.is(down.iface, 'br0');
  await app.waitForLog((l) => /^ready/.test(String(l.msg)));

  // The port comes up: a machine behind it is answered.
  await client.ip('link', 'set', 'eth0', 'up');
  await app.waitForLog((l) => /interface br0: link up/.test(String(l.msg)), 15_000);
  t.true(await leased(client), 'udhcpc got a lease once the link was up');

  // A flap: the only port goes down and back up; the same sockets keep answering.
  await srv.ip('link', 'set', 'p0', 'down');
  await app.waitForLog((l) => /interface br0: link .*no carrier/.test(String(l.msg)) && l.level === 40, 15_000);
  await srv.ip('link', 'set', 'p0', 'up');
  await app.waitForLog((l) => /interface br0: link up/.test(String(l.msg)) && app.lines.indexOf(l) > app.lines.findIndex((x) => /no machine can reach us/.test(String(x.msg))), 15_000);
  t.true(await leased(client), 'udhcpc got a lease after the flap');
});

maybe('--iface whose address changes: says what changed, serves with the new address and keeps the timeline (needs root)', async (t) => {
  t.timeout(90_000);
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const a = await topo.namespace('adr');
  const b = await topo.namespace('adrc');
  await topo.veth(a, 'eth0', b, 'eth0', '10.96.0.1/24', '10.96.0.50/24');
  await b.ip('addr', 'add', '10.96.1.50/24', 'dev', 'eth0');
  const data = await mkdtemp(path.join(tmpdir(), 'bca-addr-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startAppliance(['--iface', 'eth0', '--dhcp', 'proxy', '--address', '0.0.0.0:8080', '--data-path', data], { ns: a });
  t.teardown(() => app.stop());
  await app.waitForLog((l) => /^ready: iPXE clients are sent to http:\/\/10\.96\.0\.1:8080/.test(String(l.msg)));
  // A machine fetches its script before the change: its steps must outlive the restart.
  await b.exec('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', 'http://10.96.0.1:8080/ipxe?mac=52:54:00:96:00:01']);
  // Renumbered (another subnet: deleting a primary address also deletes its secondaries).
  await a.ip('addr', 'add', '10.96.1.9/24', 'dev', 'eth0');
  await a.ip('addr', 'del', '10.96.0.1/24', 'dev', 'eth0');
  const changed = await app.waitForLog((l) => /address changed from 10\.96\.0\.1 to 10\.96\.1\.9/.test(String(l.msg)), 15_000);
  t.like(changed, { from: '10.96.0.1', to: '10.96.1.9' });
  await app.waitForLog((l) => /^ready: iPXE clients are sent to http:\/\/10\.96\.1\.9:8080/.test(String(l.msg)), 20_000);
  await app.waitForLog((l) => /^proxydhcp: listening on UDP 67, bound to eth0 \(10\.96\.1\.9\)/.test(String(l.msg)));
  const body = await b.exec('curl', ['-sS', '--max-time', '5', 'http://10.96.1.9:8080/boot.ipxe']);
  t.regex(body, /^#!ipxe/);
  const machine = JSON.parse(await b.exec('curl', ['-sS', '--max-time', '5', 'http://10.96.1.9:8080/api/machines/52:54:00:96:00:01'])) as { events?: { step: string }[] };
  t.true(
    machine.events?.some((e) => e.step === 'http.ipxe'),
    `the machine's steps from before the change are still on the timeline: ${JSON.stringify(machine)}`,
  );
});

maybe('--iface that does not exist, or has no IPv4, is refused at start with the reason (needs root)', async (t) => {
  const topo = new Topology();
  t.teardown(() => topo.destroy());
  const a = await topo.namespace('ifa');
  const b = await topo.namespace('ifb');
  await topo.veth(a, 'eth0', b, 'eth0');
  const start = (iface: string) =>
    run('ip', ['netns', 'exec', a.name, process.execPath, ...cliArgs(['--iface', iface, '--data-path', `${PROJECT_ROOT}data`])], { cwd: PROJECT_ROOT, encoding: 'utf8' }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  const bare = await start('eth0');
  t.is(bare.code, 2);
  t.regex(bare.stderr, /interface eth0 has no IPv4 address \(link .*\); give it one/);
  const missing = await start('eth7');
  t.is(missing.code, 2);
  t.regex(missing.stderr, /interface eth7 does not exist/);
});
