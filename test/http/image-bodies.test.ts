/**
 * Both ways an image body is written (--http-sendfile on: sendfile(2) from its own thread;
 * off: reused buffers) give the same bytes to a real curl: whole files, ranges, many at once,
 * several on one kept-alive connection, a client leaving mid-body, a file cut short while
 * served; and the metric says which way each body went.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { curl, startServer } from './server.ts';

const BIG = randomBytes(6 * 1024 * 1024 + 5);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

for (const [sendfile, writer] of [
  ['on', 'sendfile'],
  ['off', 'buffers'],
] as const) {
  test.serial(`--http-sendfile ${sendfile}: whole, ranges, 20 at once and several on one connection arrive intact, counted as ${writer}`, async (t) => {
    const s = await startServer({ 'data/boot/default.json': { kernel: '/images/k' } }, { 'http-sendfile': sendfile });
    t.teardown(() => s.close());
    await mkdir(path.join(s.dir.root, 'images/os'), { recursive: true });
    await writeFile(path.join(s.dir.root, 'images/os/big.img'), BIG);
    const url = `${s.url}/images/os/big.img`;

    const whole = await curl([url]);
    t.is(whole.status, 200);
    t.is(sha(whole.body), sha(BIG));
    const from = 3 * 1024 * 1024 - 7;
    const part = await curl(['-r', `${from}-${from + 1_500_000}`, url]);
    t.is(part.status, 206);
    t.true(part.body.equals(BIG.subarray(from, from + 1_500_001)));
    const tail = await curl(['-r', '-1000', url]);
    t.true(tail.body.equals(BIG.subarray(BIG.length - 1000)));

    // Three bodies on one kept-alive connection: the response after a body written behind Node's back is still well framed.
    const dir = path.join(s.dir.root, 'out');
    await mkdir(dir);
    const three = await run(['-sS', '-w', '%{num_connects} ', '-o', path.join(dir, 'a'), url, '-o', path.join(dir, 'b'), `${url}?again`, '-o', path.join(dir, 'c'), `${s.url}/boot.ipxe`]);
    t.is(three.code, 0, three.stderr);
    t.deepEqual(three.stdout.trim().split(' ').map(Number), [1, 0, 0], 'one connection for all three');
    const { readFile } = await import('node:fs/promises');
    t.is(sha(await readFile(path.join(dir, 'a'))), sha(BIG));
    t.is(sha(await readFile(path.join(dir, 'b'))), sha(BIG));
    t.regex(await readFile(path.join(dir, 'c'), 'utf8'), /^#!ipxe/);

    const args = ['-sS', '--parallel', '--parallel-max', '20'];
    for (let i = 0; i < 20; i++) args.push('-o', path.join(dir, `p${i}`), `${url}?n=${i}`);
    const par = await run(args);
    t.is(par.code, 0, par.stderr);
    for (let i = 0; i < 20; i++) t.is(sha(await readFile(path.join(dir, `p${i}`))), sha(BIG), `parallel ${i}`);

    // 25 bodies; with sendfile on, the 1,000-byte suffix range is still written from the event loop (file-body.ts SENDFILE_MIN).
    const counted = (await s.ctx.metrics.imageBodies.get()).values;
    const count = (w: string) => counted.find((v) => v.labels.writer === w)?.value ?? 0;
    if (writer === 'sendfile') t.deepEqual([count('sendfile'), count('buffers')], [24, 1], JSON.stringify(counted));
    else t.deepEqual([count('sendfile'), count('buffers')], [0, 25], JSON.stringify(counted));
  });

  test.serial(`--http-sendfile ${sendfile}: a client leaving mid-body and a file cut short while served; the server goes on`, async (t) => {
    const s = await startServer({ 'data/boot/default.json': { kernel: '/images/k' } }, { 'http-sendfile': sendfile });
    t.teardown(() => s.close());
    await mkdir(path.join(s.dir.root, 'images/os'), { recursive: true });
    const file = path.join(s.dir.root, 'images/os/huge.img');
    // Far more than loopback's socket buffers hold, so a slow client is still mid-body when it leaves or the file is cut.
    const huge = Buffer.concat(Array.from({ length: 8 }, () => BIG));
    await writeFile(file, huge);
    const url = `${s.url}/images/os/huge.img`;

    const left = await run(['-sS', '--limit-rate', '4M', '--max-time', '1', '-o', '/dev/null', url]);
    t.is(left.code, 28, 'curl gave up mid-body (operation timed out)');
    const cut = run(['-sS', '--limit-rate', '8M', '--max-time', '20', '-o', '/dev/null', '-w', '%{size_download}', url]);
    await new Promise((r) => setTimeout(r, 500));
    await truncate(file, 1024 * 1024);
    const short = await cut;
    t.not(short.code, 0, 'the client sees the body end short');
    t.true(Number(short.stdout) < huge.length);

    await writeFile(file, BIG);
    const again = await curl([url]);
    t.is(sha(again.body), sha(BIG));
  });
}
