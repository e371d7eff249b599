import test from 'ava';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cliArgs, PROJECT_ROOT, startAppliance } from './helpers/appliance.ts';
import { dataDir } from './store/fixtures.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (node --import tsx src/main.ts …) to completion. */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, cliArgs(args), { cwd: PROJECT_ROOT, env: { ...process.env, BOOTCFG_DATA_PATH: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number | null }).code ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

function assertUsageError(t: import('ava').ExecutionContext, r: Run, reason: RegExp) {
  t.is(r.code, 2);
  const [first, blank, usage] = r.stderr.split('\n');
  t.regex(first!, /^bootcfg-appliance: /);
  t.regex(first!, reason);
  t.is(blank, '');
  t.regex(usage!, /^Usage: bootcfg-appliance/);
  t.is(r.stdout, '');
}

test('a bad flag: exit 2, one line saying which, then the usage', async (t) => {
  assertUsageError(t, await run(['--ifcae', 'br0']), /ifcae/);
  assertUsageError(t, await run(['serve', '--dhcp', 'sometimes']), /--dhcp:/);
  assertUsageError(t, await run(['--address', 'nowhere']), /--address: expected HOST:PORT/);
  assertUsageError(t, await run(['validate', '--bogus']), /validate: .*bogus/);
  assertUsageError(t, await run(['frobnicate']), /unknown command "frobnicate"/);
});

test('validate: the shipped data passes with a summary', async (t) => {
  const r = await run(['validate', '--data-path', path.join(PROJECT_ROOT, 'data')]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^ok: \d+ file\(s\) in /);
  t.regex(r.stdout, /boot: default, mac\/52:54:00:c7:b6:64, uuid\/1cff2cd8-f00a-42c8-9426-f55e6a1847f6/);
  t.regex(r.stdout, /cloud: default, mac\/52:54:00:12:34:56/);
});

test('validate: exits 1 listing each bad file with its path and reason', async (t) => {
  const dir = await dataDir({
    'boot/default.json': { kernel: '/images/k' },
    'boot/mac/52:54:00:00:00:01.json': '{"kernel": "/k", "initrd": "one"}',
    'boot/mac/oops.json': { kernel: '/k' },
    'cloud/uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6': 'ok',
  });
  t.teardown(() => dir.cleanup());
  await writeFile(path.join(dir.root, 'cloud/default'), Buffer.from([0xff, 0xfe, 0x00]));
  const r = await run(['validate'], { BOOTCFG_DATA_PATH: dir.root });
  t.is(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  t.true(lines.some((l) => l.startsWith(`${path.join(dir.root, 'boot/mac/52:54:00:00:00:01.json')}: initrd: `)));
  t.true(lines.some((l) => l.startsWith(`${path.join(dir.root, 'boot/mac/oops.json')}: file name is not a MAC address`)));
  t.true(lines.some((l) => l.startsWith(`${path.join(dir.root, 'cloud/default')}: not UTF-8 text`)));
  t.is(lines.at(-1), `3 bad file(s) in ${dir.root}`);
});

test('validate: a missing data path is an error', async (t) => {
  const r = await run(['validate', '--data-path', '/nonexistent/bca-data']);
  t.is(r.code, 1);
  t.regex(r.stderr, /\/nonexistent\/bca-data: not a directory/);
});

test('serve: the store loads first and the HTTP API answers from it; SIGTERM stops cleanly', async (t) => {
  const app = await startAppliance(['--address', '127.0.0.1:0', '--data-path', path.join(PROJECT_ROOT, 'data'), '--base-url', 'http://boot.test:8080']);
  t.teardown(() => app.stop());
  const loaded = app.lines.findIndex((l) => String(l.msg).startsWith('store loaded'));
  const listening = app.lines.findIndex((l) => l.msg === 'http listening');
  t.true(loaded >= 0 && loaded < listening, 'store loaded before HTTP listens');
  const address = String(app.lines[listening]!.address);
  const res = await fetch(`http://${address}/ipxe?mac=52-54-00-C7-B6-64`);
  t.is(res.status, 200);
  t.regex(await res.text(), /^#!ipxe\nkernel http:\/\/boot\.test:8080\/images\/debian\/linux initrd=initrd0 console=ttyS0,115200n8 priority=low quiet\n/);
  t.is(await app.stop(), 0);
});

test("the seed's own Go-style command line serves: -address=HOST:PORT -data-path DIR", async (t) => {
  const app = await startAppliance(['-address=127.0.0.1:0', '-data-path', path.join(PROJECT_ROOT, 'data'), '-log-level=info']);
  t.teardown(() => app.stop());
  const address = String(app.lines.find((l) => l.msg === 'http listening')!.address);
  const res = await fetch(`http://${address}/ipxe?mac=52-54-00-C7-B6-64`);
  t.is(res.status, 200, 'the data path given Go-style was read');
  t.is(await app.stop(), 0);
});

test('Go-style flags: an unknown one is the same usage error as its -- form; validate takes them too', async (t) => {
  assertUsageError(t, await run(['-bogus=1']), /Unknown option '--bogus'/);
  const r = await run(['validate', '-data-path', path.join(PROJECT_ROOT, 'data')]);
  t.is(r.code, 0, r.stderr);
  const help = await run(['-h']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--data-path DIR/, 'the usage shows the -- form');
});

test('validate: a matchbox directory is judged too: the examples pass, a group naming a missing profile fails with its path', async (t) => {
  const ok = await run(['validate', '--data-path', path.join(PROJECT_ROOT, 'examples', 'etcd-cluster')]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /matchbox: 3 group\(s\), 1 profile\(s\) in use/);
  const dir = await dataDir({ 'groups/a.json': { id: 'a', profile: 'nope', selector: { mac: '52:54:00:00:00:01' } }, 'profiles/p.json': { id: 'p' } });
  t.teardown(() => dir.cleanup());
  const bad = await run(['validate', '--data-path', dir.root]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /groups\/a\.json: names profile "nope"/);
});
