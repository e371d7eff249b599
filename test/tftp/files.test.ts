import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FirmwareCatalog } from '../../src/firmware/catalog.ts';
import { normalizeRequest, resolveRequest, type RootPolicy } from '../../src/tftp/files.ts';

const norm: [string, string | null][] = [
  ['undionly.kpxe', 'undionly.kpxe'],
  ['/undionly.kpxe', 'undionly.kpxe'],
  ['//grub/grub.cfg', 'grub/grub.cfg'],
  ['./a/./b', 'a/b'],
  ['a//b', 'a/b'],
  ['../etc/passwd', null],
  ['/../../etc/passwd', null],
  ['a/../../b', null],
  ['a/..', null],
  ['..', null],
  ['..\\..\\windows', null],
  // Backslashes are separators (dnsmasq): Windows boot managers and some PXE configs use them.
  ['a\\b', 'a/b'],
  ['\\Boot\\BCD', 'Boot/BCD'],
  ['pxelinux.cfg\\default', 'pxelinux.cfg/default'],
  ['\\\\a\\/b', 'a/b'],
  ['a\\..\\..\\b', null],
  ['a\\..', null],
  ['\\..\\etc/passwd', null],
  ['\\.hidden', null],
  ['a\\.git\\config', null],
  ['\\', null],
  ['a\0b', null],
  ['a\nb', null],
  ['a\x7fb', null],
  ['.hidden', null],
  ['a/.git/config', null],
  ['/', null],
  ['.', null],
  ['', null],
];

for (const [input, want] of norm) {
  test(`normalizeRequest ${JSON.stringify(input)} → ${want ?? 'refused'}`, (t) => {
    const r = normalizeRequest(input);
    if (want === null) t.false(r.ok);
    else t.deepEqual(r, { ok: true, rel: want });
  });
}

const sha = (b: string) => createHash('sha256').update(b).digest('hex');

async function root(t: { teardown: (f: () => Promise<void>) => void }): Promise<{ policy: RootPolicy; dir: string; outside: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-tftproot-'));
  const outside = await mkdtemp(path.join(tmpdir(), 'bca-outside-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.teardown(() => rm(outside, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'undionly.kpxe'), 'verified');
  await writeFile(path.join(dir, 'ipxe.efi'), 'tampered');
  await writeFile(path.join(dir, 'SHA256SUMS'), `${sha('verified')}  undionly.kpxe\n${sha('original')}  ipxe.efi\n${sha('x')}  snponly.efi\n`);
  await mkdir(path.join(dir, 'grub'));
  await writeFile(path.join(dir, 'grub', 'grub.cfg'), 'set timeout=1\n');
  await writeFile(path.join(outside, 'secret'), 'secret');
  await symlink(path.join(outside, 'secret'), path.join(dir, 'leak'));
  await symlink(outside, path.join(dir, 'leakdir'));
  await symlink('grub/grub.cfg', path.join(dir, 'inside-link'));
  await symlink('ipxe.efi', path.join(dir, 'bad-alias.efi'));
  await symlink('undionly.kpxe', path.join(dir, 'good-alias.kpxe'));
  const catalog = await FirmwareCatalog.load(dir);
  return { policy: { root: dir, catalog, serveOtherFiles: true }, dir, outside };
}

async function read(r: Awaited<ReturnType<typeof resolveRequest>>): Promise<string | { code: number }> {
  if (!r.ok) return { code: r.code };
  await r.source.load(0, r.source.size);
  const s = r.source.peek(0, r.source.size)!.toString();
  await r.source.close();
  return s;
}

test('resolveRequest serves verified firmware and other files, refuses the rest', async (t) => {
  const { policy } = await root(t);
  const cases: [string, string | { code: number }][] = [
    ['undionly.kpxe', 'verified'],
    ['/undionly.kpxe', 'verified'],
    ['good-alias.kpxe', 'verified'],
    ['ipxe.efi', { code: 1 }], // bad checksum: never served
    ['bad-alias.efi', { code: 1 }], // nor through a symlink
    ['snponly.efi', { code: 1 }], // listed, missing
    ['grub/grub.cfg', 'set timeout=1\n'],
    ['inside-link', 'set timeout=1\n'],
    ['grub\\grub.cfg', 'set timeout=1\n'],
    ['\\undionly.kpxe', 'verified'],
    ['leakdir\\secret', { code: 2 }], // a backslash path is confined like a slash one
    ['..\\secret', { code: 2 }],
    ['leak', { code: 2 }],
    ['leakdir/secret', { code: 2 }],
    ['grub', { code: 1 }], // a directory
    ['../secret', { code: 2 }],
    ['nothing-here', { code: 1 }],
    ['autoexec.ipxe', { code: 1 }],
    ['grub/nothing/deeper', { code: 1 }],
    ['undionly.kpxe/x', { code: 1 }],
  ];
  for (const [name, want] of cases) t.deepEqual(await read(await resolveRequest(name, policy)), want, name);
});

test('resolveRequest with serveOtherFiles off serves only verified firmware', async (t) => {
  const { policy } = await root(t);
  const strict = { ...policy, serveOtherFiles: false };
  t.is(await read(await resolveRequest('undionly.kpxe', strict)), 'verified');
  t.deepEqual(await read(await resolveRequest('grub/grub.cfg', strict)), { code: 1 });
});
