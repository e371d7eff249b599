/**
 * Which engine sends the blocks (--tftp-engine), said at start, and what only the worker
 * engine has to get right on its own: a file that shrinks under a transfer, every engine
 * ending it the same way, and the shared firmware bytes left intact by the transfers.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { encodeAck, encodeRequest } from '../../src/tftp/packet.ts';
import { DEFAULT_LIMITS, TftpServer } from '../../src/tftp/server.ts';
import { DEFAULT_RETRANSMIT } from '../../src/tftp/session.ts';
import { clients, makeRoot, run, sha256File, startServer, TFTP_ENGINES, tempDir, type Root } from './helpers.ts';
import { serverWithClient } from './raw-client.ts';

let root: Root;
test.before(async () => {
  root = await makeRoot();
});
test.after.always(async () => root?.cleanup());

const listening = (logs: Record<string, unknown>[]) => logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('tftp listening'));

test.serial('the worker engine is the default and the start line says so; --tftp-engine event-loop is honoured', async (t) => {
  const worker = await startServer(root.dir);
  t.teardown(() => worker.stop());
  t.is(listening(worker.logs)?.engine, 'worker');
  const loop = await startServer(root.dir, { engine: 'event-loop' });
  t.teardown(() => loop.stop());
  t.is(listening(loop.logs)?.engine, 'event-loop');
});

/** A host without ::1 (IPv6 disabled) skips the IPv6 case, and says so, rather than passing it unasserted. */
const ipv6Loopback = Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === '::1'));

(ipv6Loopback ? test.serial : test.skip)(`on IPv6 the event loop serves, and a transfer still completes (curl over ::1)${ipv6Loopback ? '' : ' — skipped: this host has no ::1'}`, async (t) => {
  const srv = await startServer(root.dir, { listen: { host: '::1', port: 0 } });
  t.teardown(() => srv.stop());
  t.is(listening(srv.logs)?.engine, 'event-loop');
  const out = await tempDir();
  t.teardown(() => out.cleanup());
  const got = path.join(out.dir, 'u.kpxe');
  const res = await run('curl', ['-sS', '-o', got, `tftp://[::1]:${srv.port}/undionly.kpxe`]);
  t.is(res.code, 0, res.stderr);
  t.is(await sha256File(got), root.sums['undionly.kpxe'] ?? 'missing');
});

for (const engine of TFTP_ENGINES) {
  test.serial(`${engine}: a file cut short during its transfer ends it as an error, and no byte past the cut is sent`, async (t) => {
    const dir = await tempDir();
    t.teardown(() => dir.cleanup());
    const file = path.join(dir.dir, 'shrinks.bin');
    const bytes = randomBytes(1024 * 1024);
    await writeFile(file, bytes);
    const { srv, c } = await serverWithClient(t, dir.dir, { engine });
    c.send(encodeRequest('rrq', 'shrinks.bin'), srv.port);
    const received: Buffer[] = [];
    let first = await c.expect('data');
    received.push(Buffer.from(first.packet.data));
    // What both engines hold in memory is well under 1 MiB; cut the file to 64 KiB.
    await truncate(file, 64 * 1024);
    let ended: string | undefined;
    for (let block = 1; block < 2048 && !ended; block++) {
      c.send(encodeAck(block), first.port);
      const next = await c.next(5000);
      if (!next) break;
      if (next.packet.op === 'error') ended = next.packet.message;
      else if (next.packet.op === 'data') {
        received.push(Buffer.from(next.packet.data));
        first = { packet: next.packet, port: next.port };
      }
    }
    t.is(ended, 'Error reading the file', 'the client is told at once');
    await new Promise((r) => setTimeout(r, 100));
    const log = srv.logs.find((l) => l.file === 'shrinks.bin' && typeof l.outcome === 'string');
    t.is(log?.outcome, 'error', JSON.stringify(log));
    t.regex(String(log?.detail), /shrank while being served/);
    t.is(await srv.counter('tftpTransfers', { outcome: 'error' }), 1);
    const sent = Buffer.concat(received);
    t.true(sent.length < bytes.length, 'the transfer stopped early');
    // Whatever arrived is the file as it was: nothing stale or made up.
    t.true(sent.equals(bytes.subarray(0, sent.length)));
  });
}

test.serial('firmware bytes shared with the worker are the same after 50 transfers as the verified file', async (t) => {
  const srv = await startServer(root.dir);
  t.teardown(() => srv.stop());
  const out = await tempDir();
  t.teardown(() => out.cleanup());
  for (let i = 0; i < 50; i++) {
    const r = await clients.curl(srv.port, 'undionly.kpxe', path.join(out.dir, `u${i % 2}`), ['--tftp-blksize', String(512 + 100 * (i % 9))]);
    t.is(r.code, 0, r.stderr);
  }
  t.is(await sha256File(path.join(out.dir, 'u0')), root.sums['undionly.kpxe'] ?? 'missing');
  t.is(await sha256File(path.join(out.dir, 'u1')), root.sums['undionly.kpxe'] ?? 'missing');
  t.deepEqual(await readFile(path.join(out.dir, 'u0')), await readFile(path.join(root.dir, 'undionly.kpxe')));
});

test('a port already taken: start fails with the reason, and ends the worker thread it started, which is no engine failure', async (t) => {
  const first = await startServer(root.dir);
  t.teardown(() => first.server.stop());
  const engineFailures: Error[] = [];
  const quiet = () => undefined;
  const server = new TftpServer({
    host: '127.0.0.1',
    port: first.port,
    resolve: () => Promise.reject(new Error('no request can arrive')),
    maxTransfers: 10,
    maxTransfersPerClient: 10,
    limits: DEFAULT_LIMITS,
    retransmit: DEFAULT_RETRANSMIT,
    events: { started: quiet, finished: quiet, malformed: quiet, retransmitted: quiet, stray: quiet, failed: quiet, engineFailed: (err) => engineFailures.push(err) },
  });
  await t.throwsAsync(server.start(), { message: /EADDRINUSE/ });
  t.is(server.engine, 'event-loop', 'no worker engine is left behind');
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(engineFailures, []);
});
