/**
 * The systemd unit's promise, checked without systemd (needs root): with CAP_NET_BIND_SERVICE
 * as its only capability (ambient, bounding set, no new privileges, as the unit sets them) the
 * appliance ties DHCP to --iface with SO_BINDTODEVICE, binds 67, 4011 and 69, and answers a PXE
 * client; with no capability at all it refuses to start. It runs as `nobody` when that user can
 * read the checkout, else as uid 0 stripped to the same capability set (the kernel grants root
 * nothing beyond its bounding set).
 */
import test from 'ava';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { isRoot, type Namespace } from '../helpers/netns.ts';
import { cliArgs, PROJECT_ROOT } from '../helpers/appliance.ts';
import { createLan, LAN, runPxeClient, testMac } from '../dhcp/scripted.ts';
import { MessageType } from '../../src/dhcp/options.ts';
import { onLines } from '../helpers/lines.ts';

const maybe = isRoot ? test.serial : test.skip;
const run = promisify(execFile);

function setprivArgs(user: 'nobody' | 'root', caps: string[]): string[] {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  const who = user === 'nobody' ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  return [...who, `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs'];
}

async function nobodyCanRead(file: string): Promise<boolean> {
  try {
    await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', file]);
    return true;
  } catch {
    return false;
  }
}

interface Started {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  stderr: () => string;
}

function spawnConfined(ns: Namespace, priv: string[], args: string[]): Started {
  const child = ns.spawn('setpriv', [...priv, process.execPath, ...cliArgs(['--log-format', 'json', ...args])], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  child.stdout!.setEncoding('utf8').on(
    'data',
    onLines((text) => {
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ msg: text });
      }
    }),
  );
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited, stderr: () => err };
}

async function until<T>(what: string, f: () => T | undefined, exited: Promise<unknown>, ms = 90_000): Promise<T> {
  let done = false;
  void exited.then(() => (done = true));
  for (const end = Date.now() + ms; Date.now() < end; ) {
    const v = f();
    if (v !== undefined) return v;
    if (done) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const v = f();
  if (v !== undefined) return v;
  throw new Error(`${what}: not seen`);
}

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-priv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'boot'), { recursive: true });
  await writeFile(path.join(dir, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));
  return dir;
}

maybe('with only CAP_NET_BIND_SERVICE the appliance binds 67/4011/69 on --iface and answers (needs root)', async (t) => {
  t.timeout(180_000);
  const lan = await createLan({ clients: 1 });
  t.teardown(() => lan.destroy());
  const data = await scratch(t);
  const user = (await nobodyCanRead(path.join(PROJECT_ROOT, 'package.json'))) ? 'nobody' : 'root';
  t.log(`running as ${user} with CAP_NET_BIND_SERVICE only`);
  const app = spawnConfined(lan.srv, setprivArgs(user, ['net_bind_service']), [
    '--iface',
    'eth0',
    '--dhcp',
    'proxy',
    '--address',
    `${LAN.server}:8080`,
    '--tftp-address',
    `${LAN.server}:69`,
    '--data-path',
    data,
    '--firmware-path',
    path.join(PROJECT_ROOT, 'firmware'),
  ]);
  t.teardown(async () => {
    app.child.kill('SIGTERM');
    await app.exited;
  });
  await until('ready', () => app.lines.find((l) => String(l.msg).startsWith('ready')), app.exited).catch((err: Error) => {
    throw new Error(`${err.message}; stderr: ${app.stderr().slice(-2000)}; log: ${JSON.stringify(app.lines.slice(-8))}`);
  });
  t.truthy(app.lines.find((l) => String(l.msg).includes('listening on UDP 67, bound to eth0')));
  t.truthy(app.lines.find((l) => String(l.msg).includes('listening on UDP 4011, bound to eth0')));

  const status = (await lan.srv.exec('cat', [`/proc/${app.child.pid}/status`])).split('\n');
  t.log(status.filter((l) => l.startsWith('Cap')).join('; '));

  const client = lan.clients[0]!;
  const mac = testMac();
  const offer = (await runPxeClient(client, { kind: 'bios', mac, xid: 0x0c4b0001, type: MessageType.DISCOVER, iface: 'eth0', maxReplies: 1 }))[0];
  t.is(offer?.packet.file, 'undionly.kpxe');
  await client.ip('addr', 'add', `${LAN.prefix}.151/${LAN.cidr}`, 'dev', 'eth0');
  const out = path.join(data, 'undionly.kpxe');
  await client.exec('tftp', ['-m', 'binary', LAN.server, '-c', 'get', 'undionly.kpxe', out]);
  t.is(await client.exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${LAN.server}:8080/boot.ipxe`]), '200');
});

maybe('with no capability at all the appliance refuses to start, saying why (needs root)', async (t) => {
  t.timeout(180_000);
  const lan = await createLan({ clients: 0 });
  t.teardown(() => lan.destroy());
  const data = await scratch(t);
  const user = (await nobodyCanRead(path.join(PROJECT_ROOT, 'package.json'))) ? 'nobody' : 'root';
  const app = spawnConfined(lan.srv, setprivArgs(user, []), [
    '--iface',
    'eth0',
    '--dhcp',
    'proxy',
    '--address',
    `${LAN.server}:8080`,
    '--tftp-address',
    `${LAN.server}:69`,
    '--data-path',
    data,
    '--firmware-path',
    path.join(PROJECT_ROOT, 'firmware'),
  ]);
  t.teardown(() => {
    app.child.kill('SIGTERM');
  });
  const code = await app.exited;
  t.not(code, 0);
  t.regex(`${app.stderr()}\n${JSON.stringify(app.lines)}`, /EACCES|permission denied/i);
});
