import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FirmwareCatalog, ManifestError, parseSha256Sums } from '../../src/firmware/catalog.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function fixture(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-fw-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('parseSha256Sums reads text and binary markers and rejects paths', (t) => {
  const h = 'a'.repeat(64);
  t.deepEqual(parseSha256Sums(`${h}  undionly.kpxe\n${h.toUpperCase()} *ipxe.efi\n\n# comment\n`), [
    { name: 'undionly.kpxe', sha256: h },
    { name: 'ipxe.efi', sha256: h },
  ]);
  for (const bad of [`${h}  ../etc/passwd`, `${h}  sub/dir.efi`, `${h}  .hidden`, `nothex  x.efi`, `${h}  a\n${h}  a`]) {
    t.throws(() => parseSha256Sums(bad), { instanceOf: ManifestError }, bad);
  }
});

test('load verifies every listed file: ok, missing, bad checksum, symlink out of root', async (t) => {
  const dir = await fixture(t);
  const outside = await fixture(t);
  const good = Buffer.from('good firmware');
  await writeFile(path.join(dir, 'undionly.kpxe'), good);
  await writeFile(path.join(dir, 'ipxe.efi'), 'tampered');
  await writeFile(path.join(outside, 'snponly.efi'), 'elsewhere');
  await symlink(path.join(outside, 'snponly.efi'), path.join(dir, 'snponly.efi'));
  await mkdir(path.join(dir, 'dir.efi'));
  await writeFile(
    path.join(dir, 'SHA256SUMS'),
    [`${sha(good)}  undionly.kpxe`, `${sha('original')}  ipxe.efi`, `${sha('elsewhere')}  snponly.efi`, `${sha('x')}  ipxe-arm64.efi`, `${sha('x')}  dir.efi`].join('\n'),
  );
  const fw = await FirmwareCatalog.load(dir);
  t.true(fw.has('undionly.kpxe'));
  t.deepEqual(fw.resolve('undionly.kpxe')?.data, good);
  t.is(fw.resolve('undionly.kpxe')?.size, good.length);
  for (const name of ['ipxe.efi', 'snponly.efi', 'ipxe-arm64.efi', 'dir.efi', 'unlisted.efi']) {
    t.false(fw.has(name), name);
    t.is(fw.resolve(name), undefined, name);
    t.truthy(fw.explain(name), name);
  }
  t.deepEqual(
    fw.list().map((e) => [e.name, e.status]),
    [
      ['undionly.kpxe', 'ok'],
      ['ipxe.efi', 'bad-checksum'],
      ['snponly.efi', 'outside-root'],
      ['ipxe-arm64.efi', 'missing'],
      ['dir.efi', 'not-a-file'],
    ],
  );
  t.true(fw.isListed('ipxe.efi'));
  t.false(fw.isListed('grub.cfg'));
});

test('load without SHA256SUMS, or with a damaged one, trusts nothing and does not throw', async (t) => {
  const dir = await fixture(t);
  await writeFile(path.join(dir, 'undionly.kpxe'), 'x');
  t.deepEqual((await FirmwareCatalog.load(dir)).list(), []);
  await writeFile(path.join(dir, 'SHA256SUMS'), 'garbage line\n');
  const fw = await FirmwareCatalog.load(dir);
  t.false(fw.has('undionly.kpxe'));
});

test('the firmware fetched into ./firmware verifies (after firmware/fetch.sh)', async (t) => {
  const fw = await FirmwareCatalog.load(new URL('../../firmware', import.meta.url).pathname);
  const listed = fw.list();
  t.true(listed.length >= 3);
  for (const e of listed) t.is(e.status, 'ok', `${e.name}: ${fw.explain(e.name) ?? ''}`);
  t.true(fw.has('undionly.kpxe') && fw.has('ipxe.efi') && fw.has('snponly.efi'));
});
