import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { curl, startServer, type TestServer } from './server.ts';

const IMAGE = randomBytes(1024 * 1024 + 17);
let s: TestServer;
let url: string;

test.before(async () => {
  s = await startServer({ 'data/boot/default.json': { kernel: '/images/k' }, 'images/.secret': 'hidden', 'images/sub/snponly.efi': 'MZ efi', 'secret.txt': 'outside images' });
  await mkdir(path.join(s.dir.root, 'images/os'), { recursive: true });
  await writeFile(path.join(s.dir.root, 'images/os/initrd.img'), IMAGE);
  url = `${s.url}/images/os/initrd.img`;
});
test.after.always(async () => {
  await s?.close();
});

test('whole file: 200 with length, ETag, Last-Modified and Accept-Ranges', async (t) => {
  const r = await curl([url]);
  t.is(r.status, 200);
  t.true(r.body.equals(IMAGE));
  t.is(r.headers['content-length'], String(IMAGE.length));
  t.is(r.headers['accept-ranges'], 'bytes');
  t.truthy(r.headers.etag);
  t.truthy(r.headers['last-modified']);
});

test('curl -r 0-99: 206 with exactly those bytes', async (t) => {
  const r = await curl(['-r', '0-99', url]);
  t.is(r.status, 206);
  t.is(r.headers['content-range'], `bytes 0-99/${IMAGE.length}`);
  t.is(r.headers['content-length'], '100');
  t.true(r.body.equals(IMAGE.subarray(0, 100)));
});

test('a range deep in the file and a suffix range', async (t) => {
  const mid = await curl(['-r', '1000000-1000099', url]);
  t.is(mid.status, 206);
  t.true(mid.body.equals(IMAGE.subarray(1_000_000, 1_000_100)));
  const tail = await curl(['-r', '-100', url]);
  t.is(tail.status, 206);
  t.is(tail.headers['content-range'], `bytes ${IMAGE.length - 100}-${IMAGE.length - 1}/${IMAGE.length}`);
  t.true(tail.body.equals(IMAGE.subarray(IMAGE.length - 100)));
  const open = await curl(['-r', `${IMAGE.length - 5}-`, url]);
  t.true(open.body.equals(IMAGE.subarray(IMAGE.length - 5)));
});

test('an unsatisfiable range: 416 with Content-Range bytes */size', async (t) => {
  const r = await curl(['-r', `${IMAGE.length}-${IMAGE.length + 10}`, url]);
  t.is(r.status, 416);
  t.is(r.headers['content-range'], `bytes */${IMAGE.length}`);
});

test('HEAD: 200 with Content-Length and no body', async (t) => {
  const r = await curl(['-I', url]);
  t.is(r.status, 200);
  t.is(r.headers['content-length'], String(IMAGE.length));
  t.is(r.body.length, 0);
});

test('ETag and If-Modified-Since give 304', async (t) => {
  const first = await curl(['-I', url]);
  const etag = first.headers.etag!;
  const again = await curl(['-H', `If-None-Match: ${etag}`, url]);
  t.is(again.status, 304);
  t.is(again.body.length, 0);
  const since = await curl(['-H', `If-Modified-Since: ${first.headers['last-modified']}`, url]);
  t.is(since.status, 304);
  const changed = await curl(['-I', '-H', 'If-None-Match: "other"', url]);
  t.is(changed.status, 200);
});

test('traversal, dotfiles, missing files and directories are refused', async (t) => {
  const cases: [string, number][] = [
    ['/images/../secret.txt', 403],
    ['/images/%2e%2e/secret.txt', 403],
    ['/images/os/..%2f..%2fsecret.txt', 403],
    ['/images/.secret', 403],
    ['/images/os/missing', 404],
    ['/images/os', 404],
    ['/images/os/', 404],
    ['/images/%00', 400],
  ];
  for (const [p, status] of cases) {
    const r = await curl(['--path-as-is', `${s.url}${p}`]);
    t.is(r.status, status, p);
    t.false(r.body.toString().includes('outside images'), p);
  }
  t.true(s.lines.some((l) => l.path === '/images/../secret.txt' && l.status === 403));
});

test('EFI programs are served as application/efi (UEFI HTTP Boot checks it)', async (t) => {
  const r = await curl([`${s.url}/images/sub/snponly.efi`]);
  t.is(r.status, 200);
  t.is(r.headers['content-type'], 'application/efi');
});

test('/assets/… is the same folder under matchbox’s name: same bytes, same refusals', async (t) => {
  const a = await fetch(`${s.url}/assets/sub/snponly.efi`);
  t.is(a.status, 200);
  t.is(await a.text(), 'MZ efi');
  t.is((await fetch(`${s.url}/assets/.secret`)).status, 403);
  const up = await fetch(`${s.url}/assets/%2e%2e/secret.txt`);
  t.true(up.status === 403 || up.status === 404, `refused (${up.status})`);
  t.false((await up.text()).includes('outside images'));
});

test('a file of several read chunks, whole and as a range across a chunk boundary; an empty file', async (t) => {
  const big = randomBytes(5 * 1024 * 1024 + 3);
  await writeFile(path.join(s.dir.root, 'images/os/big.img'), big);
  await writeFile(path.join(s.dir.root, 'images/os/empty.img'), '');
  const whole = await curl([`${s.url}/images/os/big.img`]);
  t.is(whole.status, 200);
  t.true(whole.body.equals(big));
  const from = 2 * 1024 * 1024 - 5;
  const part = await curl(['-r', `${from}-${from + 2 * 1024 * 1024}`, `${s.url}/images/os/big.img`]);
  t.is(part.status, 206);
  t.true(part.body.equals(big.subarray(from, from + 2 * 1024 * 1024 + 1)));
  const empty = await curl([`${s.url}/images/os/empty.img`]);
  t.is(empty.status, 200);
  t.is(empty.headers['content-length'], '0');
  t.is(empty.body.length, 0);
});

test('a client hanging up mid-download: the server goes on serving, the step is recorded once', async (t) => {
  const big = randomBytes(8 * 1024 * 1024);
  await writeFile(path.join(s.dir.root, 'images/os/abort.img'), big);
  const abort = new AbortController();
  const res = await fetch(`${s.url}/images/os/abort.img`, { signal: abort.signal });
  const reader = res.body!.getReader();
  await reader.read();
  abort.abort();
  await reader.read().catch(() => undefined);
  const again = await curl([`${s.url}/images/os/abort.img`]);
  t.true(again.body.equals(big));
  const logged = s.lines.filter((l) => l.path === '/images/os/abort.img');
  t.is(logged.length, 2);
});
