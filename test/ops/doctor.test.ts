/**
 * `doctor` and `--dhcp auto` on a LAN this test builds (namespaces; dnsmasq as the neighbour
 * when there is one): what they find, and the mode they pick.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { adviseMode } from '../../src/dhcp/probe.ts';
import { cliArgs, PROJECT_ROOT, startAppliance } from '../helpers/appliance.ts';
import { isRoot, type Namespace } from '../helpers/netns.ts';
import { createLan, LAN } from '../dhcp/scripted.ts';
import { startDnsmasq } from '../e2e/lib/peers.ts';

const maybe = isRoot ? test.serial : test.skip;
const RANGE = { start: `${LAN.prefix}.100`, end: `${LAN.prefix}.150` };

function doctor(ns: Namespace, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('ip', ['netns', 'exec', ns.name, process.execPath, ...cliArgs(['doctor', ...args])], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

async function dataWithMissingImage(t: { teardown(fn: () => Promise<void>): void }): Promise<{ data: string; images: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'bca-doctor-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'data', 'boot'), { recursive: true });
  await mkdir(path.join(root, 'images'));
  await writeFile(path.join(root, 'images', 'vmlinuz'), 'k');
  await writeFile(path.join(root, 'data', 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd-missing.gz'] }));
  return { data: path.join(root, 'data'), images: path.join(root, 'images') };
}

test('adviseMode: full only with a range and nobody answering; proxy beside a DHCP server; a warning when PXE is already answered', (t) => {
  const dhcp = { server: '10.0.0.2', yiaddr: '10.0.0.50', answersPxe: false, bootFile: undefined, nextServer: undefined };
  const pxe = { ...dhcp, answersPxe: true, bootFile: 'pxelinux.0' };
  const proxy = { ...dhcp, yiaddr: '0.0.0.0', answersPxe: true };
  t.is(adviseMode([], true).mode, 'full');
  t.is(adviseMode([], false).mode, 'proxy');
  t.regex(adviseMode([], false).why, /without --dhcp-range/);
  t.is(adviseMode([dhcp], true).mode, 'proxy');
  t.is(adviseMode([dhcp], true).warning, undefined);
  t.regex(adviseMode([pxe], true).warning ?? '', /10\.0\.0\.2 already answers PXE/);
  t.is(adviseMode([proxy], true).mode, 'full', 'a ProxyDHCP neighbour hands out no addresses');
  t.truthy(adviseMode([proxy], true).warning);
});

maybe('doctor beside a dnsmasq that answers PXE: names the missing initrd and the neighbouring PXE server, advises proxy (needs root)', async (t) => {
  t.timeout(90_000);
  const lan = await createLan({ site: true });
  t.teardown(() => lan.destroy());
  const site = await startDnsmasq(lan.site!, { iface: 'eth0', range: RANGE, extra: ['dhcp-boot=pxelinux.0'] });
  t.teardown(() => site.stop());
  const { data, images } = await dataWithMissingImage(t);
  const r = await doctor(lan.srv, ['--iface', 'eth0', '--data-path', data, '--images-path', images, '--address', `${LAN.server}:8080`]);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /^ok {4}interface {2}eth0 is up with 10\.77\.0\.1\/255\.255\.255\.0$/m);
  t.regex(r.stdout, /^FAIL {2}images {5}.*default\.json names \/images\/initrd-missing\.gz, but .*initrd-missing\.gz does not exist/m);
  t.regex(r.stdout, /^ok {4}firmware/m);
  t.regex(r.stdout, /^warn {2}dhcp {7}answered by 10\.77\.0\.2 \(offered 10\.77\.0\.\d+\) answering PXE with pxelinux\.0$/m);
  t.regex(r.stdout, /10\.77\.0\.2 already answers PXE on this segment/);
  t.regex(r.stdout, /^run with: --dhcp proxy {2}\(a DHCP server hands out addresses here \(10\.77\.0\.2\)/m);
});

maybe('doctor alone on its segment: nobody answers, full with a range; a port already taken is named (needs root)', async (t) => {
  t.timeout(90_000);
  const lan = await createLan();
  t.teardown(() => lan.destroy());
  const { data, images } = await dataWithMissingImage(t);
  await writeFile(path.join(data, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));
  // Something else holds the HTTP port.
  const squatter = lan.srv.spawn(process.execPath, ['-e', `require('node:net').createServer().listen(8080, '${LAN.server}'); setTimeout(() => {}, 60000)`]);
  t.teardown(() => {
    squatter.kill('SIGTERM');
  });
  await new Promise((r) => setTimeout(r, 800));
  const r = await doctor(lan.srv, [
    '--iface',
    'eth0',
    '--data-path',
    data,
    '--images-path',
    images,
    '--address',
    `${LAN.server}:8080`,
    '--dhcp-range',
    `${RANGE.start},${RANGE.end}`,
    '--dhcp',
    'full',
  ]);
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /^FAIL {2}ports {6}HTTP port 8080 is in use by node \(pid \d+\)$/m);
  t.regex(r.stdout, /^ok {4}images {5}all 1 kernel and initrd file\(s\)/m);
  t.regex(r.stdout, /^ok {4}dhcp {7}no DHCP server answered/m);
  t.regex(r.stdout, /^run with: --dhcp full {2}\(no DHCP server answered: serving addresses from --dhcp-range\)$/m);
});

maybe('--dhcp auto: proxy beside a DHCP server, full alone with a range, and it says which and why (needs root)', async (t) => {
  t.timeout(120_000);
  const lan = await createLan({ site: true });
  t.teardown(() => lan.destroy());
  const { data } = await dataWithMissingImage(t);
  const args = ['--iface', 'eth0', '--address', `${LAN.server}:8080`, '--data-path', data, '--dhcp', 'auto', '--dhcp-range', `${RANGE.start},${RANGE.end}`];
  const alone = await startAppliance(args, { ns: lan.srv });
  const full = await alone.waitForLog((l) => /^--dhcp auto: full: no DHCP server answered/.test(String(l.msg)));
  t.is(full.dhcp, 'full');
  await alone.waitForLog((l) => /^dhcp-full: listening/.test(String(l.msg)));
  await alone.stop();

  const site = await startDnsmasq(lan.site!, { iface: 'eth0', range: { start: `${LAN.prefix}.200`, end: `${LAN.prefix}.250` } });
  t.teardown(() => site.stop());
  const beside = await startAppliance(args, { ns: lan.srv });
  t.teardown(() => beside.stop());
  const proxy = await beside.waitForLog((l) => /^--dhcp auto: proxy: a DHCP server hands out addresses here \(10\.77\.0\.2\)/.test(String(l.msg)));
  t.is(proxy.dhcp, 'proxy');
  await beside.waitForLog((l) => /^proxydhcp: listening/.test(String(l.msg)));
});
