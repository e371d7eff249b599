/**
 * `images fetch flatcar|fedora-coreos` against a release mirror the test starts on loopback,
 * signed with a key the test makes (--keyring): files land only once checksum AND signature
 * pass; a bad checksum, a bad signature and a cut connection each end with a clear error and
 * nothing under --images-path that /images would serve; a cut download resumes with Range.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { digestsEntry } from '../../src/images/digests.ts';
import { versionFromVersionTxt } from '../../src/images/flatcar.ts';
import { KEYS_DIR, PINNED_KEYS, pinnedKeyring } from '../../src/images/keyring.ts';
import { cliArgs, PROJECT_ROOT } from '../helpers/appliance.ts';
import { addFcosTree, addFlatcarTree, detachedSig, digestsFile, makeKey, type Mirror, startMirror, type TestKey } from './release-mirror.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      cliArgs(args),
      { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, BOOTCFG_IMAGES_KEYRING: '', ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

async function scratch(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-img-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(t: ExecutionContext): Promise<{ mirror: Mirror; key: TestKey; keyring: string; images: string }> {
  const mirror = await startMirror();
  t.teardown(() => mirror.close());
  const key = await makeKey();
  const dir = await scratch(t);
  const keyring = path.join(dir, 'mirror-key.asc');
  await writeFile(keyring, key.armoredPublic);
  const images = path.join(dir, 'images');
  return { mirror, key, keyring, images };
}

/** Every file under `dir` that /images (send, dotfiles deny) or TFTP (refuses dot segments) would serve. */
async function servable(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
  } catch {
    return [];
  }
  return entries.filter((rel) => !rel.split(path.sep).some((s) => s.startsWith('.'))).sort();
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function bootConfig(stdout: string): { kernel: string; initrd: string[]; cmdline: Record<string, string | true> } {
  const at = stdout.indexOf('boot config that boots it');
  return JSON.parse(stdout.slice(stdout.indexOf('\n', at) + 1));
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .slice(0, stdout.indexOf('boot config that boots it'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('flatcar: kernel and initrd land under images/flatcar/<version>/, checked by SHA-512 and signature, one JSON line each, then the boot config', async (t) => {
  const { mirror, key, keyring, images } = await setup(t);
  const tree = await addFlatcarTree(mirror, key);
  const r = await run(['images', 'fetch', 'flatcar', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await servable(images), [`flatcar/${tree.version}/flatcar_production_pxe.vmlinuz`, `flatcar/${tree.version}/flatcar_production_pxe_image.cpio.gz`]);
  t.true((await readFile(path.join(images, 'flatcar', tree.version, 'flatcar_production_pxe_image.cpio.gz'))).equals(tree.initrd));
  // Not a TTY: each file is one JSON line on stdout.
  const lines = jsonLines(r.stdout);
  t.is(lines.length, 2, r.stdout);
  for (const [line, data] of [
    [lines[0]!, tree.kernel],
    [lines[1]!, tree.initrd],
  ] as const) {
    t.is(line.sha256, sha256(data));
    t.is(line.bytes, data.length);
    t.is(line.checksum, 'sha512');
    t.is(line.signedBy, key.signingKeyId);
  }
  const boot = bootConfig(r.stdout);
  t.is(boot.kernel, `/images/flatcar/${tree.version}/flatcar_production_pxe.vmlinuz`);
  t.deepEqual(boot.initrd, [`/images/flatcar/${tree.version}/flatcar_production_pxe_image.cpio.gz`]);
  t.is(boot.cmdline['flatcar.first_boot'], 'yes');
  t.is(boot.cmdline['flatcar.config.url'], '{{base_url}}/ignition?uuid=${uuid}&mac=${mac:hexhyp}');
  // `current` was resolved through its signed version.txt, then the numbered folder was used.
  t.true(mirror.seen.some((s) => s.path === '/amd64-usr/current/version.txt.sig'));
  t.true(mirror.seen.some((s) => s.path === tree.initrdPath));
  t.false(mirror.seen.some((s) => s.path === '/amd64-usr/current/flatcar_production_pxe_image.cpio.gz'));
  t.regex(r.stderr, /"os":"flatcar".*"version":"4459\.2\.1"/);

  // A second run finds both in place by checksum and downloads nothing.
  const before = mirror.seen.length;
  const again = await run(['images', 'fetch', 'flatcar', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(again.code, 0, again.stderr);
  t.true(jsonLines(again.stdout).every((l) => l.present === true));
  t.false(mirror.seen.slice(before).some((s) => s.path === tree.initrdPath));
});

test('fedora-coreos: the stream JSON names the artifacts; --mirror replaces the official origin; kernel, initramfs, rootfs land with the live boot config', async (t) => {
  const { mirror, key, images } = await setup(t);
  const dir = path.dirname(images);
  const keyring = path.join(dir, 'env-key.asc');
  await writeFile(keyring, key.armoredPublic);
  const tree = await addFcosTree(mirror, key);
  // The keyring by environment variable this time.
  const r = await run(['images', 'fetch', 'fedora-coreos', '--mirror', `${mirror.url}/`, '--images-path', images], { BOOTCFG_IMAGES_KEYRING: keyring });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await servable(images), [tree.names.initramfs, tree.names.kernel, tree.names.rootfs].map((n) => `fedora-coreos/${n}`).sort());
  t.true((await readFile(path.join(images, 'fedora-coreos', tree.names.rootfs))).equals(tree.data.rootfs));
  t.true(mirror.seen.some((s) => s.path === tree.paths.rootfs) && mirror.seen.some((s) => s.path === `${tree.paths.kernel}.sig`));
  const lines = jsonLines(r.stdout);
  t.is(lines.length, 3);
  t.true(lines.every((l) => l.checksum === 'sha256' && l.signedBy === key.signingKeyId));
  const boot = bootConfig(r.stdout);
  t.is(boot.kernel, `/images/fedora-coreos/${tree.names.kernel}`);
  t.deepEqual(boot.initrd, [`/images/fedora-coreos/${tree.names.initramfs}`]);
  t.deepEqual(boot.cmdline, {
    'coreos.live.rootfs_url': `{{base_url}}/images/fedora-coreos/${tree.names.rootfs}`,
    'ignition.firstboot': true,
    'ignition.platform.id': 'metal',
    'ignition.config.url': '{{base_url}}/ignition?uuid=${uuid}&mac=${mac:hexhyp}',
  });
});

test('a bad checksum ends with a clear error and nothing under the images folder', async (t) => {
  const { mirror, key, keyring, images } = await setup(t);
  const tree = await addFlatcarTree(mirror, key);
  // The DIGESTS of the initrd name other bytes (the kernel's are right: it must not land alone).
  mirror.files.set(`${tree.initrdPath}.DIGESTS`, Buffer.from(digestsFile('flatcar_production_pxe_image.cpio.gz', Buffer.from('other bytes'))));
  const r = await run(['images', 'fetch', 'flatcar', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /images fetch flatcar: checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/4459\.2\.1\/flatcar_production_pxe_image\.cpio\.gz: its sha512 is [0-9a-f]{128}, the release says [0-9a-f]{128}/,
  );
  t.deepEqual(await servable(images), []);
});

test('a bad signature (other bytes signed, or a key the keyring lacks) ends with a clear error naming the key, and nothing under the images folder', async (t) => {
  const { mirror, key, keyring, images } = await setup(t);
  const tree = await addFcosTree(mirror, key);
  // Signed by the right key, but over other bytes.
  mirror.files.set(`${tree.paths.initramfs}.sig`, await detachedSig(key, Buffer.from('not the initramfs')));
  const bad = await run(['images', 'fetch', 'fedora-coreos', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, new RegExp(`images fetch fedora-coreos: http://127\\.0\\.0\\.1:\\d+${tree.paths.initramfs.replaceAll('.', '\\.')}: BAD signature by key ${key.signingKeyId}`));
  t.deepEqual(await servable(images), []);

  // Signed by a key the keyring does not hold.
  const stranger = await makeKey('Someone Else');
  mirror.files.set(`${tree.paths.initramfs}.sig`, await detachedSig(stranger, tree.data.initramfs));
  const foreign = await run(['images', 'fetch', 'fedora-coreos', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(foreign.code, 1);
  t.regex(foreign.stderr, new RegExp(`signed by key ${stranger.signingKeyId}, which .*mirror-key\\.asc does not hold`));
  t.deepEqual(await servable(images), []);
});

test('without --keyring the repository key is required: a mirror signed by another key is refused, naming the key id (verification is never skipped)', async (t) => {
  const { mirror, key, images } = await setup(t);
  await addFlatcarTree(mirror, key);
  const r = await run(['images', 'fetch', 'flatcar', '--mirror', mirror.url, '--images-path', images]);
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`version\\.txt: signed by key ${key.signingKeyId}, which .*images/keys/flatcar\\.asc does not hold`));
  t.deepEqual(await servable(images), []);
  // Fedora CoreOS: the key of the build's major version is looked for, and one not kept is named.
  await addFcosTree(mirror, key, { release: '39.20240101.3.0' });
  const old = await run(['images', 'fetch', 'fedora-coreos', '--mirror', mirror.url, '--images-path', images]);
  t.is(old.code, 1);
  t.regex(old.stderr, /no signing key "fedora-39" is kept in .*images\/keys/);
});

test('a connection cut mid-body ends with a clear error, the part kept outside what /images serves; the next run resumes it with Range', async (t) => {
  const { mirror, key, keyring, images } = await setup(t);
  const tree = await addFlatcarTree(mirror, key);
  const cutAt = 1_000_000;
  mirror.cut(tree.initrdPath, cutAt, 3); // every try of this run
  const r = await run(['images', 'fetch', 'flatcar', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /images fetch flatcar: the connection for http:\/\/127\.0\.0\.1:\d+\/amd64-usr\/4459\.2\.1\/flatcar_production_pxe_image\.cpio\.gz ended after \d+ of 3145728 bytes .*run again to resume/,
  );
  t.regex(r.stderr, /"retry":/, 'it retried within the run');
  t.deepEqual(await servable(images), [], 'nothing /images would serve (the part is under the dot-folder .cache)');
  const parts = (await readdir(path.join(images, '.cache'), { recursive: true })).filter((f) => f.endsWith('.part'));
  t.true(parts.length > 0, 'the partial initrd is kept for the next run');

  const rangesBefore = mirror.seen.filter((s) => s.path === tree.initrdPath && s.range).length;
  t.true(rangesBefore >= 1, 'later tries of the same run resumed with Range');
  const again = await run(['images', 'fetch', 'flatcar', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images]);
  t.is(again.code, 0, again.stderr);
  const resumed = mirror.seen.filter((s) => s.path === tree.initrdPath && s.range).at(-1);
  t.truthy(resumed);
  t.true(Number(/^bytes=(\d+)-$/.exec(resumed!.range!)?.[1]) >= cutAt, `the server saw ${resumed!.range}`);
  t.true((await readFile(path.join(images, 'flatcar', tree.version, 'flatcar_production_pxe_image.cpio.gz'))).equals(tree.initrd));
  const line = jsonLines(again.stdout).find((l) => String(l.file).endsWith('.cpio.gz'))!;
  t.true(Number(line.resumedFrom) >= cutAt);
  t.deepEqual(await servable(images), [`flatcar/${tree.version}/flatcar_production_pxe.vmlinuz`, `flatcar/${tree.version}/flatcar_production_pxe_image.cpio.gz`]);
  t.deepEqual(
    (await readdir(path.join(images, '.cache'), { recursive: true })).filter((f) => f.endsWith('.part')),
    [],
    'no part left once placed',
  );
});

test('a single cut is resumed within the same run (Range) and the file lands whole', async (t) => {
  const { mirror, key, keyring, images } = await setup(t);
  const tree = await addFcosTree(mirror, key);
  mirror.cut(tree.paths.rootfs, 500_000, 1);
  const cache = path.join(path.dirname(images), 'cache-elsewhere');
  const r = await run(['images', 'fetch', 'fedora-coreos', '--mirror', mirror.url, '--keyring', keyring, '--images-path', images, '--cache', cache]);
  t.is(r.code, 0, r.stderr);
  const ranged = mirror.seen.filter((s) => s.path === tree.paths.rootfs && s.range);
  t.is(ranged.length, 1);
  t.true(Number(/^bytes=(\d+)-$/.exec(ranged[0]!.range!)?.[1]) > 0, ranged[0]!.range);
  t.true((await readFile(path.join(images, 'fedora-coreos', tree.names.rootfs))).equals(tree.data.rootfs));
});

test('images fetch: the OS options are checked before anything is fetched', async (t) => {
  for (const [args, why] of [
    [['images', 'fetch', 'fedora-coreos', '--channel', 'beta'], /--channel is not an option of fedora-coreos/],
    [['images', 'fetch', 'fedora-coreos', '--stream', 'rawhide'], /--stream must be one of stable, testing, next/],
    [['images', 'fetch', 'flatcar', '--arch', 'x86_64'], /--arch must be one of amd64, arm64/],
    [['images', 'fetch', 'flatcar', '--version', 'latest'], /--version must be a release number/],
    [['images', 'fetch', 'flatcar', '--mirror', 'ftp://mirror.example'], /--mirror must be an http\(s\) URL/],
    [['images', 'fetch', 'debian', '--mirror', 'http://x'], /--mirror is not an option of debian/],
  ] as const) {
    const r = await run([...args]);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, why, args.join(' '));
  }
});

test('the keys kept in images/keys/ carry the pinned fingerprints', async (t) => {
  for (const name of Object.keys(PINNED_KEYS)) {
    const ring = await pinnedKeyring(name);
    t.is(ring.keys.length, 1, name);
    t.is(ring.keys[0]!.getFingerprint().toUpperCase(), PINNED_KEYS[name]!);
  }
  // The Flatcar key's newest signing subkey is the one its signatures are made with (valid until 2027-03-08).
  const flatcar = (await pinnedKeyring('flatcar')).keys[0]!;
  t.true(flatcar.subkeys.some((s) => s.getKeyID().toHex().toUpperCase() === '32DA80F91EF52974'));
  // A key file swapped in the tree is refused.
  const dir = await scratch(t);
  await writeFile(path.join(dir, 'flatcar.asc'), await readFile(path.join(KEYS_DIR, 'fedora-44.asc'), 'utf8'));
  await t.throwsAsync(pinnedKeyring('flatcar', dir), { message: /is not the pinned key F88CFEDEFF29A5B4D9523864E25D9AED0593B34A/ });
});

test('DIGESTS and version.txt are read as Flatcar writes them', (t) => {
  const data = Buffer.from('kernel');
  t.deepEqual(digestsEntry(digestsFile('flatcar_production_pxe.vmlinuz', data), 'flatcar_production_pxe.vmlinuz'), { algorithm: 'sha512', hex: createHash('sha512').update(data).digest('hex') });
  t.is(digestsEntry(digestsFile('a', data), 'b'), undefined, 'another file');
  t.is(digestsEntry(`# MD5 HASH\n${createHash('md5').update(data).digest('hex')}  a\n`, 'a'), undefined, 'MD5 alone proves nothing');
  t.is(versionFromVersionTxt('FLATCAR_BUILD=4459\nFLATCAR_VERSION=4459.2.1\nFLATCAR_VERSION_ID=4459.2.1\n'), '4459.2.1');
  t.is(versionFromVersionTxt('FLATCAR_VERSION=../../etc\n'), undefined);
});
