/**
 * The container image (Containerfile, scripts/container.sh): built from Debian packages only
 * (mmdebstrap) and run as the seed's line runs it, `podman run --network host -v data:/data
 * -v images:/images bootcfg-appliance -address=…`, here in a namespace this test builds (the
 * container joins it with --network ns:, the namespace standing in for the host's network),
 * with --iface and NET_BIND_SERVICE: it serves /ui and answers a scripted PXE client with
 * Debian's iPXE, then TFTP hands that file out.
 *
 * podman on this kind of machine: crun cannot run in its hybrid cgroup layout and the
 * sandbox refuses raising rlimits, so the test runs runc with the cgroupfs manager and lower
 * ulimits (podman's defaults are above the hard limits here). Users' hosts need none of that.
 */
import test from 'ava';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MessageType } from '../../src/dhcp/options.ts';
import { createLan, LAN, runPxeClient } from '../dhcp/scripted.ts';
import { PROJECT_ROOT } from '../helpers/appliance.ts';
import { onLines } from '../helpers/lines.ts';
import { isRoot } from '../helpers/netns.ts';

const run = promisify(execFile);
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const maybe = isRoot && has('podman') && has('mmdebstrap') && has('runc') ? test.serial : test.skip;
const IMAGE = 'localhost/bootcfg-appliance:test';
const PODMAN = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];

maybe('the container image builds from Debian packages and boots a scripted PXE client (needs root, podman)', async (t) => {
  t.timeout(600_000);
  await run('bash', [path.join(PROJECT_ROOT, 'scripts', 'container.sh'), IMAGE], { cwd: PROJECT_ROOT, timeout: 540_000, maxBuffer: 64 * 1024 * 1024 });
  const scratch = mkdtempSync(path.join(tmpdir(), 'bca-ctr-'));
  t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
  cpSync(path.join(PROJECT_ROOT, 'data'), path.join(scratch, 'data'), { recursive: true });
  mkdirSync(path.join(scratch, 'images'));

  const lan = await createLan();
  t.teardown(() => lan.destroy());
  await lan.clients[0]!.ip('addr', 'add', `${LAN.prefix}.60/24`, 'dev', 'eth0');
  const name = `bca-ctr-${process.pid}`;
  // podman itself stays in the root namespace (ip netns exec would hide the cgroup mounts runc
  // needs); the container joins the test's namespace and sees only its interfaces.
  const child = spawn(
    'podman',
    [
      ...PODMAN,
      'run',
      '--rm',
      '--name',
      name,
      '--network',
      `ns:/run/netns/${lan.srv.name}`,
      '--cap-add',
      'NET_BIND_SERVICE',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
      '-v',
      `${path.join(scratch, 'data')}:/data`,
      '-v',
      `${path.join(scratch, 'images')}:/images`,
      IMAGE,
      `-address=${LAN.server}:8080`,
      '-iface',
      'eth0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await run('podman', [...PODMAN, 'rm', '-f', '--time', '2', name]).catch(() => undefined);
  });
  let output = '';
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 60 s: ${output}`)), 60_000);
    child.stdout?.on(
      'data',
      onLines((line) => {
        output += `${line}\n`;
        if (line.includes('"msg":"ready')) {
          clearTimeout(timer);
          resolve();
        }
      }),
    );
    child.once('exit', (code) => reject(new Error(`podman exited ${code}: ${output}`)));
  });
  t.regex(output, /firmware: \/usr\/lib\/ipxe has no SHA256SUMS; its files are checked against dpkg's checksums/);
  const page = await lan.clients[0]!.exec('curl', ['-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${LAN.server}:8080/ui`]);
  t.is(page, '200');
  const replies = await runPxeClient(lan.clients[0]!, { kind: 'bios', mac: '52:54:00:c7:b6:64', xid: 0x4321, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
  t.is(replies.length, 1, 'a ProxyDHCP offer from the container');
  t.is(replies[0]!.packet.file, 'undionly.kpxe');
  const out = path.join(scratch, 'undionly.kpxe');
  await lan.clients[0]!.exec('tftp', ['-m', 'binary', LAN.server, '-c', 'get', 'undionly.kpxe', out]);
  t.true(readFileSync(out).length > 60_000, 'iPXE over TFTP from the container');
});
