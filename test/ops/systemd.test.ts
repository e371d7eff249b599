import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../helpers/appliance.ts';
import { readServeOptions } from '../../src/cli.ts';

const run = promisify(execFile);
const UNIT = path.join(PROJECT_ROOT, 'systemd/bootcfg-appliance.service');
const ENV_FILE = path.join(PROJECT_ROOT, 'systemd/bootcfg-appliance.env');

/**
 * The unit names /opt/bootcfg-appliance; verify checks that ExecStart exists and is executable,
 * so point it at this checkout: that proves bin/bootcfg-appliance.js is what the unit can run.
 */
async function unitForThisCheckout(t: { teardown(fn: () => Promise<void>): void }, rewrite: (text: string) => string = (s) => s): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const text = (await readFile(UNIT, 'utf8')).replaceAll('/opt/bootcfg-appliance/', PROJECT_ROOT);
  const file = path.join(dir, 'bootcfg-appliance.service');
  await writeFile(file, rewrite(text));
  return file;
}

async function verify(file: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stderr: e.stderr ?? String(err) };
  }
}

test('systemd-analyze verify accepts the unit without a warning', async (t) => {
  const file = await unitForThisCheckout(t);
  const { code, stderr } = await verify(file);
  t.is(code, 0, stderr);
  // verify exits 0 on unknown keys and bad values, printing them: any line about the unit is a defect.
  t.is(
    stderr
      .split('\n')
      .filter((l) => l.includes('bootcfg-appliance'))
      .join('\n'),
    '',
  );
});

test('systemd-analyze verify fails when ExecStart does not exist (the check above means something)', async (t) => {
  const file = await unitForThisCheckout(t, (s) => s.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/bootcfg-appliance'));
  const { code, stderr } = await verify(file);
  t.not(code, 0);
  t.regex(stderr, /not executable/);
});

test('the unit is hardened: exposure at most 2.0 in systemd-analyze security', async (t) => {
  const file = await unitForThisCheckout(t);
  // --threshold is on systemd's 0..100 scale; 20 is the "2.0" it prints.
  const err = await run('systemd-analyze', ['security', '--offline=yes', '--threshold=20', '--no-pager', file], { encoding: 'utf8' }).then(
    () => undefined,
    (e: { stdout?: string }) => e.stdout ?? 'failed',
  );
  t.is(err, undefined);
});

test('the unit keeps only CAP_NET_BIND_SERVICE and stores leases in its StateDirectory', async (t) => {
  const text = await readFile(UNIT, 'utf8');
  const values = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
  t.deepEqual(values('CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
  t.deepEqual(values('AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  t.deepEqual(values('DynamicUser'), ['yes']);
  t.deepEqual(values('StateDirectory'), ['bootcfg-appliance']);
  t.true(values('Environment').includes('BOOTCFG_LEASE_FILE=/var/lib/bootcfg-appliance/leases.json'));
  t.deepEqual(values('Restart'), ['on-failure']);
  t.true(values('After').includes('network-online.target'));
  t.true(values('Wants').includes('network-online.target'));
});

test('every BOOTCFG_* variable in the example env file and the unit is one the CLI reads', async (t) => {
  const envText = await readFile(ENV_FILE, 'utf8');
  const unitText = await readFile(UNIT, 'utf8');
  const names = new Set<string>();
  for (const m of envText.matchAll(/^#?(BOOTCFG_[A-Z_]+)=/gm)) names.add(m[1]!);
  for (const m of unitText.matchAll(/^Environment=(BOOTCFG_[A-Z_]+)=/gm)) names.add(m[1]!);
  t.true(names.size >= 10);
  for (const name of names) {
    const { raw } = readServeOptions([], { [name]: 'x' });
    t.is(Object.keys(raw).length, 1, `${name} is not read by the CLI`);
  }
});
