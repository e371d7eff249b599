/**
 * The server against real clients nobody here wrote (tftp-hpa, atftp, curl) on loopback:
 * every byte checked by sha256, including a 64 MiB file that wraps the block number at 512 bytes.
 */
import test from 'ava';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { clients, makeRoot, readText, run, sha256File, startServer, tempDir, type Root, type Running } from './helpers.ts';

let root: Root;
let srv: Running;
let out: { dir: string; cleanup: () => Promise<void> };

test.before(async () => {
  root = await makeRoot({ big: true });
  // curl's 200 parallel transfers below all come from 127.0.0.1.
  srv = await startServer(root.dir, { maxTransfersPerClient: 1000 });
  out = await tempDir();
});

test.after.always(async () => {
  await srv?.stop();
  await root?.cleanup();
  await out?.cleanup();
});

const local = (name: string) => path.join(out.dir, name);

for (const file of ['undionly.kpxe', 'big.bin']) {
  test.serial(`tftp-hpa (RFC 1350, blksize 512) fetches ${file} intact`, async (t) => {
    const r = await clients.tftpHpa(srv.port, file, local(`hpa-${file}`));
    t.is(r.code, 0, r.stderr);
    t.is(await sha256File(local(`hpa-${file}`)), root.sums[file]!);
  });

  for (const options of [{ blksize: 1468 }, { blksize: 1468, windowsize: 16 }, { blksize: 8192, windowsize: 4 }] as Record<string, number>[]) {
    test.serial(`atftp ${JSON.stringify(options)} fetches ${file} intact`, async (t) => {
      const name = `atftp-${options.blksize}-${options.windowsize ?? 1}-${file}`;
      const r = await clients.atftp(srv.port, file, local(name), options);
      t.is(r.code, 0, r.stderr);
      t.is(await sha256File(local(name)), root.sums[file]!);
    });
  }

  for (const blksize of [512, 1468, 8192]) {
    test.serial(`curl --tftp-blksize ${blksize} fetches ${file} intact`, async (t) => {
      const name = `curl-${blksize}-${file}`;
      const r = await clients.curl(srv.port, file, local(name), ['--tftp-blksize', String(blksize)]);
      t.is(r.code, 0, r.stderr);
      t.is(await sha256File(local(name)), root.sums[file]!);
    });
  }
}

test.serial('each transfer is logged with client, file, options, bytes, time and outcome', (t) => {
  const line = srv.logs.find((l) => l.file === 'big.bin' && l.outcome === 'ok' && (l.options as Record<string, string>).windowsize === '16');
  t.truthy(line);
  t.regex(String(line!.client), /^127\.0\.0\.1:\d+$/);
  t.is(line!.bytes, 64 * 1024 * 1024);
  t.deepEqual(line!.granted, { blksize: '1468', windowsize: '16' });
  t.is(typeof line!.ms, 'number');
});

test.serial('backslashes are path separators: \\Boot\\BCD and pxelinux.cfg\\default arrive intact (tftp-hpa, atftp, curl)', async (t) => {
  const bcd = Buffer.from('regf BCD hive stand-in\0\x01\x02');
  const pxe = Buffer.from('DEFAULT menu.c32\nLABEL local\n  LOCALBOOT 0\n');
  await mkdir(path.join(root.dir, 'Boot'));
  await writeFile(path.join(root.dir, 'Boot', 'BCD'), bcd);
  await mkdir(path.join(root.dir, 'pxelinux.cfg'));
  await writeFile(path.join(root.dir, 'pxelinux.cfg', 'default'), pxe);
  for (const [remote, body] of [
    ['\\Boot\\BCD', bcd],
    ['pxelinux.cfg\\default', pxe],
  ] as const) {
    for (const [client, fetch] of [
      ['tftp-hpa', clients.tftpHpa],
      ['atftp', clients.atftp],
      ['curl', clients.curl],
    ] as const) {
      const name = local(`bs-${client}-${remote.replaceAll('\\', '_')}`);
      const r = await fetch(srv.port, remote, name);
      t.is(r.code, 0, `${client} ${remote}: ${r.stderr}`);
      t.true((await readFile(name)).equals(body), `${client} ${remote}`);
    }
  }
  t.true(
    srv.logs.some((l) => l.file === 'Boot/BCD' && l.outcome === 'ok'),
    'logged under the name it resolved to',
  );
});

const traversals = ['../../../../etc/passwd', '/../../etc/passwd', '..\\..\\etc\\passwd', 'a/../../etc/passwd', '/etc/passwd', '.hidden', 'escape/passwd'];

test.serial('traversal attempts never leave the root (curl, tftp-hpa, atftp)', async (t) => {
  const { symlink } = await import('node:fs/promises');
  await symlink('/etc', path.join(root.dir, 'escape'));
  const passwd = await readText('/etc/passwd');
  for (const [i, name] of traversals.entries()) {
    for (const [client, r] of [
      ['curl', await clients.curl(srv.port, name, local(`trav-curl-${i}`))],
      ['tftp-hpa', await clients.tftpHpa(srv.port, name, local(`trav-hpa-${i}`))],
      ['atftp', await clients.atftp(srv.port, name, local(`trav-atftp-${i}`))],
    ] as const) {
      const got = await readText(local(`trav-${client === 'tftp-hpa' ? 'hpa' : client}-${i}`));
      t.true(got === undefined || got === '' || got !== passwd, `${client} ${name}`);
      t.falsy(got?.includes('root:'), `${client} ${name}: ${r.stderr}`);
    }
  }
  const refused = srv.logs.filter((l) => l.outcome === 'refused' || l.outcome === 'not-found');
  t.true(refused.length >= traversals.length * 3);
  t.false(srv.logs.some((l) => l.outcome === 'ok' && String(l.file).includes('passwd')));
});

test.serial('a missing file is answered file-not-found (curl exit 68), and autoexec.ipxe at once', async (t) => {
  t.is((await clients.curl(srv.port, 'no-such-file', local('missing'))).code, 68);
  t.is((await clients.curl(srv.port, 'autoexec.ipxe', local('autoexec'))).code, 68);
  const r = await clients.atftp(srv.port, 'grub.cfg-01-52-54-00-12-34-56', local('grubmiss'));
  t.not(r.code, 0);
  t.true(srv.logs.some((l) => l.file === 'autoexec.ipxe' && l.outcome === 'not-found'));
});

test.serial('write requests are refused and nothing is written into the root', async (t) => {
  const before = await readdir(root.dir);
  await writeFile(local('upload.txt'), 'upload');
  const hpa = await clients.tftpHpaPut(srv.port, local('upload.txt'), 'uploaded-hpa.txt');
  const at = await clients.atftpPut(srv.port, local('upload.txt'), 'uploaded-atftp.txt');
  t.true(`${hpa.stdout}${hpa.stderr}`.length > 0 || hpa.code !== 0);
  t.not(at.code, 0);
  t.deepEqual((await readdir(root.dir)).sort(), before.sort());
  t.true((await srv.counter('tftpTransfers', { outcome: 'write-refused' })) >= 2);
});

test.serial('200 concurrent small transfers in one curl (--parallel) all complete intact', async (t) => {
  const n = 200;
  const args = ['-sS', '--parallel', '--parallel-max', String(n), '--tftp-blksize', '1468'];
  for (let i = 0; i < n; i++) args.push('-o', local(`par-${i}`), `tftp://127.0.0.1:${srv.port}/undionly.kpxe`);
  const r = await run('curl', args);
  t.is(r.code, 0, r.stderr);
  let intact = 0;
  for (let i = 0; i < n; i++) if ((await sha256File(local(`par-${i}`)).catch(() => '')) === root.sums['undionly.kpxe']) intact++;
  t.is(intact, n);
  t.is(srv.server.transfers, 0);
});

test.serial('metrics count transfers and bytes', async (t) => {
  t.true((await srv.counter('tftpTransfers', { outcome: 'ok' })) >= 200);
  t.true((await srv.counter('tftpBytes')) >= 200 * 74213);
});
