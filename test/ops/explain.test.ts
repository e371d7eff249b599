import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Explanation } from '../../src/explain.ts';
import { cliArgs, PROJECT_ROOT } from '../helpers/appliance.ts';
import { startOpsServer } from './lib.ts';

const run = promisify(execFile);
const MAC = '52:54:00:e0:00:01';
const UUID = '4c4c4544-0042-3510-8052-b4c04f4d3232';
const FILES = {
  'boot/mac/52-54-00-E0-00-01.json': JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd.img'], cmdline: 'console=ttyS0' }),
  'boot/default.json': JSON.stringify({ kernel: '/images/default-kernel' }),
  'cloud/default.yaml': '#cloud-config\n',
};

async function dataDir(t: { teardown(fn: () => Promise<void>): void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-explain-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  }
  return dir;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, cliArgs(args), {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, BOOTCFG_DATA_PATH: '', BOOTCFG_TFTP_ADDRESS: '127.0.0.1:69' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('GET /api/explain names the file that answers and the lookups that missed before it', async (t) => {
  const server = await startOpsServer(FILES);
  t.teardown(() => server.stop());
  const res = await fetch(`${server.url}/api/explain?mac=525400e00001&uuid=${UUID.toUpperCase()}`);
  t.is(res.status, 200);
  const e = (await res.json()) as Explanation;
  t.is(String(e.mac), MAC);
  t.is(String(e.uuid), UUID);
  t.deepEqual(
    e.boot.steps.map((s) => [s.key, s.outcome]),
    [
      [`uuid/${UUID}`, 'miss'],
      [`mac/${MAC}`, 'hit'],
    ],
  );
  t.is(e.boot.answeredBy?.path, path.join(server.dataPath, 'boot/mac/52-54-00-E0-00-01.json'));
  t.is(e.boot.kernel, `${server.ctx.config.baseUrl}/images/vmlinuz`);
  t.deepEqual(e.boot.initrds, [`${server.ctx.config.baseUrl}/images/initrd.img`]);
  t.regex(e.boot.script ?? '', /^#!ipxe\nkernel .*\/images\/vmlinuz initrd=initrd0 console=ttyS0\n/);
  t.deepEqual(
    e.cloud.steps.map((s) => [s.key, s.outcome]),
    [
      [`uuid/${UUID}`, 'miss'],
      [`mac/${MAC}`, 'miss'],
      ['default', 'hit'],
    ],
  );
});

test('GET /api/explain says what DHCP hands each firmware, from the boot decision and the firmware catalog', async (t) => {
  const server = await startOpsServer(FILES);
  t.teardown(() => server.stop());
  const e = (await (await fetch(`${server.url}/api/explain?mac=${MAC}`)).json()) as Explanation;
  const by = Object.fromEntries(e.dhcp.map((d) => [d.firmware, d]));
  t.is(by.bios?.action, 'tftp');
  t.is(by.bios?.bootFile, 'undionly.kpxe');
  t.is(by['efi-x64']?.bootFile, 'ipxe.efi');
  t.deepEqual(by['efi-x64']?.chain, [], 'no loader named: iPXE, as before');
  // Debian ships no arm64 iPXE: arm64 boots GRUB, or is refused naming the image when fetch.sh could not build it.
  const arm = by['efi-arm64'];
  t.regex(arm?.reason ?? '', /arm64 UEFI boots GRUB/);
  if (arm?.action === 'tftp') t.deepEqual(arm.chain, ['grubaa64.efi', 'grub/grub.cfg']);
  else t.regex(arm?.reason ?? '', /needs grubaa64\.efi/);
  t.is(by['http-x64']?.action, 'http-boot');
  t.regex(by['http-x64']?.bootFile ?? '', /^http:\/\/.*\/firmware\/ipxe\.efi$/);
  t.is(by.ipxe?.action, 'ipxe-script');
  t.is(by.ipxe?.bootFile, `${server.ctx.config.baseUrl}/boot.ipxe`);
});

test('GET /api/explain validates its query', async (t) => {
  const server = await startOpsServer({});
  t.teardown(() => server.stop());
  t.is((await fetch(`${server.url}/api/explain`)).status, 400);
  t.is((await fetch(`${server.url}/api/explain?mac=nope`)).status, 400);
  t.is((await fetch(`${server.url}/api/explain?mac=${MAC}&mac=${MAC}`)).status, 400);
  t.is((await fetch(`${server.url}/api/explain?uuid=xyz`)).status, 400);
  const e = (await (await fetch(`${server.url}/api/explain?mac=${MAC}`)).json()) as Explanation;
  t.is(e.boot.answeredBy, null);
  t.regex(e.boot.summary, /looked up boot\/mac\/52:54:00:e0:00:01 \(no file\), boot\/default \(no file\)/);
});

test('`explain` CLI: a miss falls through to default, and it says so', async (t) => {
  const dir = await dataDir(t, FILES);
  const r = await cli(['explain', '--mac', '52:54:00:e0:00:99', '--data-path', dir, '--dhcp', 'off']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /miss {4}boot\/mac\/52:54:00:e0:00:99: no file/);
  t.regex(r.stdout, new RegExp(`hit {5}boot/default: ${dir}/boot/default.json`));
  t.regex(r.stdout, new RegExp(`=> answered by ${dir}/boot/default.json`));
  t.regex(r.stdout, /BIOS PXE ROM +TFTP undionly\.kpxe/);
  t.regex(r.stdout, /iPXE .* HTTP http:\/\/127\.0\.0\.1:8080\/boot\.ipxe/);
});

test('`explain` CLI: a broken file stops the lookup, exits 1 and is listed', async (t) => {
  const dir = await dataDir(t, { ...FILES, 'boot/mac/52-54-00-E0-00-01.json': '{"kernel": ' });
  const r = await cli(['explain', `--mac=${MAC}`, '--data-path', dir, '--json']);
  t.is(r.code, 1);
  const e = JSON.parse(r.stdout) as Explanation;
  t.is(e.boot.answeredBy?.outcome, 'broken');
  t.true(e.problems.some((p) => p.path.endsWith('52-54-00-E0-00-01.json')));
});

test('`explain` CLI: no boot config anywhere exits 1; bad input is a usage error', async (t) => {
  const dir = await dataDir(t, {});
  const miss = await cli(['explain', '--mac', MAC, '--data-path', dir]);
  t.is(miss.code, 1);
  t.regex(miss.stdout, /=> no boot config matches: \/ipxe answers 404/);
  const bad = await cli(['explain', '--mac', 'zz', '--data-path', dir]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--mac: "zz" is not a MAC address/);
  const none = await cli(['explain', '--data-path', dir]);
  t.is(none.code, 2);
  const unknownFlag = await cli(['explain', '--mac', MAC, '--bogus']);
  t.is(unknownFlag.code, 2);
});

test('`explain` CLI: a machine whose config says "loader": "grub" is shown the shim → GRUB chain and the GRUB config it will get; --uefi-loader applies to configs that say nothing', async (t) => {
  const grub = JSON.stringify({ kernel: '/images/vmlinuz', initrd: ['/images/initrd.img'], cmdline: 'console=ttyS0 token=abc', loader: 'grub' });
  const dir = await dataDir(t, { ...FILES, 'boot/mac/52-54-00-E0-00-01.json': grub });
  const r = await cli(['explain', '--mac', MAC, '--data-path', dir, '--dhcp', 'off']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /UEFI x64 PXE +TFTP shimx64\.efi → grubx64\.efi → grub\/grub\.cfg/);
  t.regex(r.stdout, /says "loader": "grub"/);
  t.regex(r.stdout, /config served to GRUB over TFTP \(grub\/boot\.cfg\):\n(?:.*\n)*? {4}linux \/images\/vmlinuz console=ttyS0 token=abc\n {4}initrd \/images\/initrd\.img\n {4}boot\n/);
  t.regex(r.stdout, /BIOS PXE ROM +TFTP undionly\.kpxe/, 'BIOS keeps iPXE');

  const other = await cli(['explain', '--mac', '52:54:00:e0:00:99', '--data-path', dir, '--dhcp', 'off', '--uefi-loader', 'grub', '--json']);
  t.is(other.code, 0, other.stderr);
  const e = JSON.parse(other.stdout) as Explanation;
  const x64 = e.dhcp.find((d) => d.firmware === 'efi-x64');
  t.deepEqual(x64?.chain, ['shimx64.efi', 'grubx64.efi', 'grub/grub.cfg']);
  t.regex(x64?.reason ?? '', /--uefi-loader grub/);
  const bad = await cli(['explain', '--mac', MAC, '--data-path', dir, '--uefi-loader', 'pxelinux']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /uefi-loader/);
});

test('`explain` CLI: beside a site DHCP server, the signed chain comes with what the site server must hand out', async (t) => {
  const grub = JSON.stringify({ kernel: '/images/vmlinuz', loader: 'grub' });
  const dir = await dataDir(t, { 'boot/default.json': grub });
  const r = await cli(['explain', '--mac', MAC, '--data-path', dir, '--json', '--iface', 'lo', '--dhcp', 'proxy']);
  t.is(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout) as Explanation;
  const x64 = e.dhcp.find((d) => d.firmware === 'efi-x64');
  t.is(x64?.bootFile, 'shimx64.efi');
  t.regex(x64?.reason ?? '', /the site's DHCP server must hand out next-server 127\.0\.0\.1/);
});

test('`explain` CLI: with TFTP off, no firmware gets a TFTP file, and it says why; iPXE and HTTP Boot still get theirs', async (t) => {
  const dir = await dataDir(t, FILES);
  const r = await cli(['explain', '--mac', MAC, '--data-path', dir, '--dhcp', 'off', '--tftp-address', 'off', '--json']);
  t.is(r.code, 0, r.stderr);
  const e = JSON.parse(r.stdout) as Explanation;
  const by = Object.fromEntries(e.dhcp.map((d) => [d.firmware, d]));
  t.is(by.bios?.action, 'ignore');
  t.regex(by.bios?.reason ?? '', /would get undionly\.kpxe over TFTP, but TFTP is off here \(--tftp-address off\)/);
  t.is(by['efi-x64']?.action, 'ignore');
  t.is(by.ipxe?.action, 'ipxe-script');
  t.is(by['http-x64']?.action, 'http-boot');
});

test('`explain` CLI: beside a site DHCP server, a machine without any config is left alone, and it says so', async (t) => {
  const dir = await dataDir(t, { 'boot/mac/52-54-00-E0-00-01.json': JSON.stringify({ kernel: '/images/vmlinuz' }) });
  const r = await cli(['explain', '--mac', '52:54:00:e0:00:99', '--data-path', dir, '--json', '--iface', 'lo', '--dhcp', 'proxy']);
  const e = JSON.parse(r.stdout) as Explanation;
  for (const d of e.dhcp) {
    t.is(d.action, 'ignore', d.firmware);
    t.regex(d.reason, /^left alone: no config/, d.firmware);
  }
  const known = JSON.parse((await cli(['explain', '--mac', MAC, '--data-path', dir, '--json', '--iface', 'lo', '--dhcp', 'proxy'])).stdout) as Explanation;
  t.is(known.dhcp.find((d) => d.firmware === 'bios')?.action, 'tftp');
});

test('`explain` CLI on a matchbox data directory: the winning group, why each other lost, and the boot config it renders; --label adds labels', async (t) => {
  const dir = path.join(PROJECT_ROOT, 'examples', 'etcd-cluster');
  const r = await cli(['explain', '--mac', '52:54:00:a1:00:02', '--data-path', dir, '--dhcp', 'off']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^matchbox groups \(labels mac=52:54:00:a1:00:02\):\n {2}=> groups\/node2 wins$/m);
  t.regex(r.stdout, /^ {2}lost {4}groups\/node1: mac is "52:54:00:a1:00:02", selector wants "52:54:00:a1:00:01"$/m);
  t.regex(r.stdout, /hit {5}boot\/group\/node2: .*groups\/node2\.json/);
  t.regex(r.stdout, /etcd\.name=node2/);
  const labelled = await cli(['explain', '--mac', '52:54:00:b2:00:01', '--label', 'os=installed', '--data-path', path.join(PROJECT_ROOT, 'examples', 'install-then-disk'), '--dhcp', 'off', '--json']);
  const e = JSON.parse(labelled.stdout) as Explanation;
  t.is(e.groups?.winner, 'groups/installed');
  t.deepEqual(e.groups?.labels, { os: 'installed', mac: '52:54:00:b2:00:01' });
});
