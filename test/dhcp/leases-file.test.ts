import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, access, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LeaseFile, LeaseFileLockedError } from '../../src/dhcp/lease-file.ts';
import { LeasePool, normalizeClientId } from '../../src/dhcp/leases.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';
import { cliArgs, PROJECT_ROOT } from '../helpers/appliance.ts';
import { onLines } from '../helpers/lines.ts';

const silent = pino({ level: 'silent' });
const mac = (n: number): Mac => parseMac(n.toString(16).padStart(12, '0'))!;

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-leases-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function newPool(start = '10.0.0.1', end = '10.0.0.254') {
  return new LeasePool({ start, end, leaseTime: 3600 });
}

async function openFile(file: string, pool = newPool(), compactBytes?: number) {
  const lf = new LeaseFile(file, pool, silent, compactBytes === undefined ? {} : { compactBytes });
  const result = await lf.open();
  return { pool, lf, result };
}

async function bindMany(pool: LeasePool, lf: LeaseFile, from: number, count: number): Promise<Map<string, Mac>> {
  const out = new Map<string, Mac>();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const c = { mac: mac(from + i) };
      const ip = pool.offer(c)!.ip;
      const r = pool.bind(c, ip, `host${from + i}`);
      if (!r.ok) throw new Error(r.reason);
      await lf.commit();
      out.set(ip, c.mac);
    }),
  );
  return out;
}

function assertHeld(t: { is(a: unknown, b: unknown, m?: string): void }, pool: LeasePool, expected: Map<string, Mac>) {
  for (const [ip, m] of expected) {
    const l = pool.get(ip);
    t.is(l?.mac, m, `${ip} is still ${m}'s`);
    t.is(l?.state, 'bound', `${ip} is still bound`);
  }
}

test('the state directory is created, and a clean close and reopen keeps every lease', async (t) => {
  const file = path.join(await scratch(t), 'data', 'state', 'leases.json');
  const a = await openFile(file);
  t.deepEqual(a.result, { loaded: 0, outside: 0, problems: [] });
  const bound = await bindMany(a.pool, a.lf, 1, 20);
  a.pool.release({ mac: mac(1) }, [...bound.entries()].find(([, m]) => m === mac(1))![0]);
  await a.lf.close();
  const b = await openFile(file);
  t.is(b.result.loaded, 20);
  t.is(b.pool.find({ mac: mac(1) })?.state, 'released', "released stays released, still the client's");
  bound.delete(b.pool.find({ mac: mac(1) })!.ip);
  assertHeld(t, b.pool, bound);
  await b.lf.close();
});

test('without a close (crash), everything committed is read back from snapshot + journal', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const a = await openFile(file, newPool(), 2048); // small: compactions happen mid-way
  const bound = new Map<string, Mac>();
  for (let i = 0; i < 15; i++) for (const [ip, m] of await bindMany(a.pool, a.lf, 1 + i * 10, 10)) bound.set(ip, m);
  t.true(a.lf.stats.compactions > 1, 'the journal was folded in at least once');
  await a.lf.abandon();
  const b = await openFile(file);
  t.is(b.result.loaded, 150);
  assertHeld(t, b.pool, bound);
  await b.lf.close();
});

test('group commit: leases bound together share one journal write', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const { pool, lf } = await openFile(file);
  await bindMany(pool, lf, 1, 200);
  t.true(lf.stats.appends <= 2, `${lf.stats.appends} appends for 200 leases`);
  t.is(lf.stats.leasesWritten, 200);
  await lf.close();
});

test('commit resolves only after the lease is in the file', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const { pool, lf } = await openFile(file);
  pool.bind({ mac: mac(9) }, '10.0.0.9');
  await lf.commit();
  const journal = await readFile(lf.journalPath, 'utf8');
  t.regex(journal, /"ip":"10\.0\.0\.9","mac":"00:00:00:00:00:09".*"state":"bound"/);
  await lf.close();
});

const breakages: [string, (file: string) => Promise<void>, RegExp][] = [
  ['not JSON at all', (f) => writeFile(f, 'garbage\u0000\u0001'), /not JSON/],
  ['half-written (cut in the middle)', async (f) => truncate(f, Math.floor((await readFile(f)).length / 2)), /not JSON/],
  ['valid JSON, wrong shape', (f) => writeFile(f, JSON.stringify({ version: 1, leases: [{ ip: '10.0.0.300', state: 'bound', expires: 1 }] })), /leases\.0\.ip/],
  ['empty', (f) => writeFile(f, ''), /not JSON/],
];
for (const [title, breakIt, reason] of breakages) {
  test(`a broken lease file (${title}) is reported with its path, kept aside, and nothing is lost`, async (t) => {
    const dir = await scratch(t);
    const file = path.join(dir, 'leases.json');
    const a = await openFile(file);
    const first = await bindMany(a.pool, a.lf, 1, 10);
    await a.lf.close(); // snapshot with 10, .prev from before
    const b = await openFile(file);
    const second = await bindMany(b.pool, b.lf, 100, 10); // journal after the start-up snapshot
    // Crash, and then the snapshot is damaged.
    await b.lf.abandon();
    await breakIt(file);
    const c = await openFile(file);
    t.is(c.result.problems.length, 1, c.result.problems.join('; '));
    t.true(c.result.problems[0]!.startsWith(file));
    t.regex(c.result.problems[0]!, reason);
    assertHeld(t, c.pool, first);
    assertHeld(t, c.pool, second);
    const aside = (await readdir(dir)).filter((n) => n.startsWith('leases.json.broken-'));
    t.is(aside.length, 1, 'the broken file is kept for a person to look at');
    await c.lf.close();
    const d = await openFile(file);
    t.deepEqual(d.result.problems, [], 'the next start is clean');
    await d.lf.close();
  });
}

test('a torn last journal line (write that never finished) is ignored and reported', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const a = await openFile(file);
  const bound = await bindMany(a.pool, a.lf, 1, 5);
  await a.lf.abandon();
  await appendFile(a.lf.journalPath, '{"ip":"10.0.0.200","mac":"00:00:00:0');
  const b = await openFile(file);
  assertHeld(t, b.pool, bound);
  t.is(b.pool.get('10.0.0.200'), undefined);
  t.regex(b.result.problems.join(), /unfinished last line/);
  await b.lf.close();
});

test('leases outside a changed --dhcp-range are dropped at start', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const a = await openFile(file);
  await bindMany(a.pool, a.lf, 1, 10); // 10.0.0.1-10
  await a.lf.close();
  const b = await openFile(file, newPool('10.0.0.6', '10.0.0.50'));
  t.deepEqual([b.result.loaded, b.result.outside], [5, 5]);
  await b.lf.close();
});

// The child binds leases under load and prints ACK only once a lease is durable; we SIGKILL it
// at three different moments (compactions happen all along), restarting on the same file.
test('kill -9 mid-load, three times: no acknowledged lease is lost, no address is given to two clients', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const child = fileURLToPath(new URL('./leases-crash-child.ts', import.meta.url));
  const acked = new Map<string, Mac>();
  for (const [round, killAfter] of [
    [0, 400],
    [1, 1500],
    [2, 3000],
  ] as const) {
    const proc = spawn(
      process.execPath,
      cliArgs([])
        .slice(0, 2)
        .concat([child, file, String(1 + round * 1_000_000), '65536']),
      { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    let seen = 0;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_c, sig) => resolve(sig)));
    proc.stdout.setEncoding('utf8').on(
      'data',
      onLines((line) => {
        const m = /^ACK (\S+) (\S+)$/.exec(line);
        if (!m) return;
        const prev = acked.get(m[1]!);
        if (prev && prev !== m[2]) t.fail(`${m[1]} acknowledged to ${prev} and to ${m[2]}`);
        acked.set(m[1]!, m[2] as Mac);
        if (++seen === killAfter) proc.kill('SIGKILL');
      }),
    );
    const sig = await exited;
    t.is(sig, 'SIGKILL', `round ${round} was killed mid-load (stderr: ${err.slice(-500)})`);
  }
  t.true(acked.size >= 3000, `${acked.size} leases acknowledged`);
  const pool = new LeasePool({ start: '10.9.0.1', end: '10.9.255.254', leaseTime: 3600 });
  const lf = new LeaseFile(file, pool, silent);
  await lf.open();
  let lost = 0;
  for (const [ip, m] of acked) if (pool.get(ip)?.mac !== m || pool.get(ip)?.state !== 'bound') lost++;
  t.is(lost, 0, 'every acknowledged lease is bound to its client after the restarts');
  // New clients after the restart never get an acknowledged address.
  for (let i = 0; i < 2000; i++) {
    const c = { mac: mac(9_000_000 + i) };
    const o = pool.offer(c)!;
    if (acked.has(o.ip)) t.fail(`${o.ip} (acknowledged to ${acked.get(o.ip)}) offered to ${c.mac}`);
    t.false(pool.bind(c, [...acked.keys()][i]!).ok);
  }
  const owners = pool
    .all()
    .filter((l) => l.mac && pool.isActive(l))
    .map((l) => l.mac);
  t.is(new Set(owners).size, owners.length, 'no client holds two addresses');
  await lf.close();
});

const LOCK_CHILD = fileURLToPath(new URL('./lease-lock-child.ts', import.meta.url));

/** Starts lease-lock-child.ts on `file`; resolves with its first line and the child. */
async function lockChild(t: { teardown(fn: () => void): void }, file: string): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, cliArgsFor(LOCK_CHILD, file), { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); // by PID: ours
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', onLines(resolve));
    child.once('exit', (code) => reject(new Error(`lock child exited ${code} before saying anything: ${err.slice(-500)}`)));
  });
  return { child, line };
}

function cliArgsFor(script: string, ...args: string[]): string[] {
  return ['--import', 'tsx', script, ...args];
}

test('flock: a second process on a lease file is refused naming the file; kill -9 the first and a new one starts, whatever pid the lock file names', async (t) => {
  const file = path.join(await scratch(t), 'state', 'leases.json');
  const first = await lockChild(t, file);
  t.regex(first.line, /^READY \d+$/);
  const second = await lockChild(t, file);
  t.true(second.line.startsWith('REFUSED '), second.line);
  t.true(second.line.includes(file), 'the message names the lease file');
  t.true(second.line.includes(`process ${first.child.pid}`), 'and the process holding it');
  await new Promise((r) => second.child.once('exit', r));
  t.is(second.child.exitCode, 3);

  const exited = new Promise((r) => first.child.once('exit', r));
  first.child.kill('SIGKILL');
  await exited;
  // The lock file now names a live process that holds no lock (pid reuse, another pid namespace):
  // a pid check would refuse; the kernel's lock is gone with the process that held it.
  const sleeper = spawn('sleep', ['30']);
  t.teardown(() => {
    sleeper.kill('SIGKILL');
  });
  await writeFile(`${file}.lock`, `${sleeper.pid}\n`);
  const third = await lockChild(t, file);
  t.regex(third.line, /^READY \d+$/, 'a crashed holder leaves no stale lock');
  // This process is refused too while the new one holds it.
  await t.throwsAsync(openFile(file), { instanceOf: LeaseFileLockedError, message: new RegExp(file.replaceAll('.', '\\.')) });
  third.child.kill('SIGKILL');
  await new Promise((r) => third.child.once('exit', r));
  const { lf } = await openFile(file);
  t.is((await readFile(`${file}.lock`, 'utf8')).trim(), String(process.pid));
  await lf.close();
  // Kept on a clean close: removing it would let two processes lock two different files.
  await t.notThrowsAsync(access(`${file}.lock`));
});

test('whatever a client sends (long hostname, long client id) is written in a form that reads back', async (t) => {
  const file = path.join(await scratch(t), 'leases.json');
  const a = await openFile(file);
  const longId = normalizeClientId(Buffer.alloc(300, 7), mac(1));
  t.is(longId, undefined, 'a 300-byte client id is not used as a key');
  const c = { mac: mac(1), clientId: normalizeClientId(Buffer.from(`ff${'ab'.repeat(254)}`, 'hex'), mac(1)) };
  t.true(a.pool.bind(c, '10.0.0.7', `${'h'.repeat(600)}\u0000\n"\\`).ok);
  await a.lf.commit();
  await a.lf.abandon();
  const b = await openFile(file);
  t.deepEqual(b.result.problems, []);
  t.is(b.pool.get('10.0.0.7')?.mac, mac(1));
  t.is(b.pool.get('10.0.0.7')?.hostname?.length, 255);
  t.is(b.pool.find(c)?.ip, '10.0.0.7');
  await b.lf.close();
});
