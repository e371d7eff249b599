import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliArgs, PROJECT_ROOT, startAppliance } from '../helpers/appliance.ts';

const MAC = '52:54:00:10:90:01';

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<{ data: string; images: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  const images = path.join(dir, 'images');
  await mkdir(path.join(data, 'boot'), { recursive: true });
  await mkdir(images, { recursive: true });
  await writeFile(path.join(data, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));
  await writeFile(path.join(images, 'vmlinuz'), Buffer.alloc(100));
  return { data, images };
}

test('--log-format pretty: one line per request, the MAC first, readable without colours', async (t) => {
  const { data, images } = await scratch(t);
  const child = spawn(process.execPath, cliArgs(['--address', '127.0.0.1:0', '--data-path', data, '--images-path', images, '--log-format', 'pretty']), {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 600 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    return re.exec(out);
  };
  const listening = await until(/http listening \{"address":"127\.0\.0\.1:(\d+)"\}/);
  t.truthy(listening, out);
  const base = `http://127.0.0.1:${listening![1]}`;
  await (await fetch(`${base}/ipxe?mac=${MAC.replaceAll(':', '-')}`)).text();
  await (await fetch(`${base}/images/vmlinuz`)).arrayBuffer();
  const ipxeLine = (await until(/^.*GET \/ipxe.*$/m))?.[0] ?? '';
  const imageLine = (await until(/^.*GET \/images\/vmlinuz.*$/m))?.[0] ?? '';
  // [HH:MM:ss.mmm] INFO: <mac> GET /ipxe?… 200 {"method":…}
  t.regex(ipxeLine, new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: ${MAC} GET /ipxe\\?mac=52-54-00-10-90-01 200 \\{`));
  t.regex(imageLine, new RegExp(`INFO: ${MAC} GET /images/vmlinuz 200`), 'the download is tied to the machine by its address');
  t.notRegex(out, /\u001b\[/, 'no colour codes when stdout is not a TTY');
});

test('JSON logs: one line per protocol step, each with the mac', async (t) => {
  const { data, images } = await scratch(t);
  const app = await startAppliance(['--address', '127.0.0.1:0', '--data-path', data, '--images-path', images]);
  t.teardown(() => app.stop());
  const listening = await app.waitForLog((l) => l.msg === 'http listening');
  const base = `http://${String(listening.address)}`;
  await (await fetch(`${base}/boot.ipxe`)).text();
  await (await fetch(`${base}/ipxe?mac=${MAC}`)).text();
  await (await fetch(`${base}/images/vmlinuz`)).arrayBuffer();
  const ipxe = await app.waitForLog((l) => l.path === '/ipxe');
  const image = await app.waitForLog((l) => l.path === '/images/vmlinuz');
  t.is(ipxe.mac, MAC);
  t.is(image.mac, MAC);
  t.is(app.lines.filter((l) => l.path === '/ipxe').length, 1);
  t.is(image.status, 200);
});
