/**
 * The npm package: `npm pack` builds a tarball holding what a user runs, `npm install -g` of it
 * into a scratch prefix gives a working `bootcfg-appliance`: it serves /ui, and in a namespace
 * this test builds it answers a scripted PXE client with Debian's iPXE from /usr/lib/ipxe
 * (trusted through dpkg) and serves it over TFTP to tftp-hpa.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MessageType } from '../../src/dhcp/options.ts';
import { createLan, LAN, runPxeClient } from '../dhcp/scripted.ts';
import { PROJECT_ROOT } from '../helpers/appliance.ts';
import { onLines } from '../helpers/lines.ts';
import { isRoot } from '../helpers/netns.ts';

const run = promisify(execFile);
const maybe = isRoot && existsSync('/usr/lib/ipxe/undionly.kpxe') ? test.serial : test.skip;

maybe('npm pack → npm install -g: the installed bootcfg-appliance serves /ui and boots a scripted PXE client (needs root)', async (t) => {
  t.timeout(300_000);
  const scratch = mkdtempSync(path.join(tmpdir(), 'bca-pkg-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  const { stdout } = await run('npm', ['pack', '--pack-destination', scratch, '--silent'], { cwd: PROJECT_ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 180_000 });
  const tarball = path.join(scratch, stdout.trim().split('\n').pop()!);
  const listing = (await run('tar', ['-tzf', tarball], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  for (const f of [
    'package/dist/main.js',
    'package/dist/http/ui/index.html',
    'package/firmware/fetch.sh',
    'package/systemd/bootcfg-appliance.service',
    'package/README.md',
    'package/bin/bootcfg-appliance.js',
  ]) {
    t.true(listing.includes(`${f}\n`), `${f} in the tarball`);
  }
  t.false(/package\/src\//.test(listing), 'no sources');
  t.false(/package\/test\//.test(listing), 'no tests');
  const prefix = path.join(scratch, 'prefix');
  await run('npm', ['install', '-g', '--prefix', prefix, '--no-fund', '--no-audit', '--loglevel=error', tarball], { maxBuffer: 64 * 1024 * 1024, timeout: 240_000 });
  const bin = path.join(prefix, 'bin', 'bootcfg-appliance');
  t.true(existsSync(bin));
  const installed = path.join(prefix, 'lib', 'node_modules', 'bootcfg-appliance');
  t.regex(readFileSync(path.join(installed, 'package.json'), 'utf8'), /"name": "bootcfg-appliance"/);

  const lan = await createLan();
  t.teardown(() => lan.destroy());
  // The scripted DHCP client needs no address; curl and tftp do.
  await lan.clients[0]!.ip('addr', 'add', `${LAN.prefix}.60/24`, 'dev', 'eth0');
  const child = lan.srv.spawn(bin, ['--iface', 'eth0', '--address', `${LAN.server}:8080`, '--data-path', path.join(installed, 'data'), '--firmware-path', '/usr/lib/ipxe', '--log-format', 'json'], {
    cwd: scratch,
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 30 s: ${stderr}`)), 30_000);
    child.stdout?.on(
      'data',
      onLines((line) => {
        if (line.includes('"msg":"ready')) {
          clearTimeout(timer);
          resolve();
        }
      }),
    );
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  const page = await lan.clients[0]!.exec('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code} %{content_type}', `http://${LAN.server}:8080/ui`]);
  t.regex(page, /^200 text\/html/);
  const replies = await runPxeClient(lan.clients[0]!, { kind: 'bios', mac: '52:54:00:c7:b6:64', xid: 0x1234, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
  t.is(replies.length, 1, 'a ProxyDHCP offer');
  t.is(replies[0]!.packet.file, 'undionly.kpxe');
  const out = path.join(scratch, 'undionly.kpxe');
  await lan.clients[0]!.exec('tftp', ['-m', 'binary', LAN.server, '-c', 'get', 'undionly.kpxe', out]);
  t.true(readFileSync(out).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe')), 'Debian’s iPXE, as dpkg installed it');
});
