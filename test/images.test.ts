/** `images fetch debian`: the installer's netboot kernel and initrd from Debian's package, into --images-path, never half-written. */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliArgs, PROJECT_ROOT } from './helpers/appliance.ts';

/** Kept between runs (outside the clone): the package is 130 MB. */
const CACHE = '/var/cache/bootcfg-appliance-tests/debian-installer';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, cliArgs(args), { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-images-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const isRoot = process.getuid?.() === 0;

(isRoot ? test : test.skip)("images fetch debian: the kernel and initrd land under their real names, checksummed, with the boot config that boots them (needs root: apt's cache)", async (t) => {
  t.timeout(300_000);
  const images = await scratch(t);
  const r = await run(['images', 'fetch', 'debian', '--images-path', images, '--cache', CACHE]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{"file"'));
  t.is(lines.length, 2, r.stdout);
  for (const l of lines) {
    const f = JSON.parse(l) as { file: string; bytes: number; sha256: string };
    t.true(f.file.startsWith(path.join(images, 'debian')));
    t.is(
      createHash('sha256')
        .update(await readFile(f.file))
        .digest('hex'),
      f.sha256,
    );
    t.true(f.bytes > 1_000_000, `${f.file} is a real kernel or initrd`);
  }
  t.deepEqual((await readdir(path.join(images, 'debian'))).sort(), ['initrd.gz', 'linux'], 'nothing half-written left beside them');
  t.regex(r.stdout, /"kernel": "\/images\/debian\/linux"/);
  t.regex(r.stdout, /"initrd": \[\n\s+"\/images\/debian\/initrd\.gz"/);
  t.regex(r.stderr, /"package":"debian-installer-12-netboot-amd64"/);
});

test('images fetch: a broken package ends with a clear error and nothing under the images folder', async (t) => {
  const images = await scratch(t);
  const cache = await scratch(t);
  const policy = await new Promise<string>((resolve) => execFile('apt-cache', ['policy', 'debian-installer-12-netboot-amd64'], { encoding: 'utf8' }, (_e, out) => resolve(out ?? '')));
  const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  if (!version || version === '(none)') {
    t.log('apt has no lists for the installer package here: nothing to break');
    t.pass();
    return;
  }
  await writeFile(path.join(cache, `debian-installer-12-netboot-amd64_${version}_all.deb`), 'not a deb');
  const r = await run(['images', 'fetch', 'debian', '--images-path', images, '--cache', cache]);
  t.is(r.code, 1);
  t.regex(r.stderr, /images fetch debian: .*dpkg-deb/);
  t.deepEqual(await readdir(images), []);
});

test('images: bad input is a usage error', async (t) => {
  for (const [args, why] of [
    [['images'], /expected "images fetch OS"/],
    [['images', 'fetch', 'windows'], /"windows" is not one this version fetches/],
    [['images', 'fetch', 'debian', '--arch', 'sparc'], /--arch must be one of amd64, arm64/],
    [['images', 'fetch', 'debian', '--bogus'], /Unknown option '--bogus'/],
  ] as const) {
    const r = await run([...args]);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, why, args.join(' '));
  }
});
