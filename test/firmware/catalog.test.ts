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

test("Debian's /usr/lib/ipxe (no SHA256SUMS) is trusted through dpkg's checksums of the ipxe package, ipxe.efi through its symlink", async (t) => {
  const c = await FirmwareCatalog.load('/usr/lib/ipxe');
  if (c.trust === 'none') {
    t.log('the ipxe package is not installed here: nothing to check');
    t.pass();
    return;
  }
  t.is(c.trust, 'dpkg');
  t.true(c.has('undionly.kpxe'));
  t.true(c.has('ipxe.efi'), 'ipxe.efi → /boot/ipxe.efi, which dpkg knows');
  t.is(c.resolve('ipxe.efi')?.path, '/boot/ipxe.efi');
  t.is(c.resolve('undionly.kpxe')?.sha256, sha(c.resolve('undionly.kpxe')!.data));
  t.false(c.has('qemu'), 'a folder is not a file');
});

test('a firmware folder nobody vouches for is refused at start when DHCP or TFTP would hand it out, saying what to do', async (t) => {
  const dir = await fixture(t);
  await writeFile(path.join(dir, 'undionly.kpxe'), 'not checked');
  t.is((await FirmwareCatalog.load(dir)).trust, 'none');
  const { execFile } = await import('node:child_process');
  const { cliArgs, PROJECT_ROOT } = await import('../helpers/appliance.ts');
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      cliArgs(['--tftp-address', '127.0.0.1:0', '--address', '127.0.0.1:0', '--firmware-path', dir, '--data-path', dir]),
      { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 30_000 },
      (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stderr }),
    ),
  );
  t.is(r.code, 2);
  t.regex(r.stderr, /--firmware-path .*: no SHA256SUMS there and no Debian package installed its files/);
  t.regex(r.stderr, /sha256sum undionly\.kpxe ipxe\.efi > SHA256SUMS/);
});
