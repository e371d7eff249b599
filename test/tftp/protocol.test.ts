/**
 * Protocol behaviour seen from a scripted client on loopback: the firmware size probe,
 * windows really sent, gap recovery, duplicate ACKs, retransmission and its budget, block
 * wrap, the transfer cap, duplicate requests and malformed packets.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeAck, encodeError, encodeRequest } from '../../src/tftp/packet.ts';
import { DEFAULT_RETRANSMIT } from '../../src/tftp/session.ts';
import { makeRoot, startServer, TFTP_ENGINES, type Root } from './helpers.ts';
import { RawClient, serverWithClient } from './raw-client.ts';

/** Retransmission slow enough that any packet seen in a short wait was caused by what the client did. */
const PATIENT = { ...DEFAULT_RETRANSMIT, minRtoMs: 10_000, initialRtoMs: 10_000, maxRtoMs: 10_000 };

let root: Root;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.before(async () => {
  root = await makeRoot();
  // 70,003 blocks of 8 bytes: block numbers wrap past 65535.
  const wrap = Buffer.alloc(8 * 70_002 + 3);
  for (let i = 0; i < wrap.length; i++) wrap[i] = (i * 7 + (i >> 8)) & 0xff;
  await writeFile(path.join(root.dir, 'wrap.bin'), wrap);
});
test.after.always(async () => root?.cleanup());

/** Reads a whole file with lock-step or windowed ACKs, acknowledging each full window, as a receiver keeping blocks in order. */
async function fetchAll(c: RawClient, port: number, blksize: number, windowsize: number): Promise<{ data: Buffer; wires: number[] }> {
  const chunks: Buffer[] = [];
  const wires: number[] = [];
  let expected = 1;
  for (;;) {
    const { packet } = await c.expect('data');
    // A window resent because our ACK was slow (a loaded machine): keep only the next block in order.
    if (packet.block !== (expected & 0xffff)) continue;
    wires.push(packet.block);
    chunks.push(Buffer.from(packet.data));
    const last = packet.data.length < blksize;
    if (last || expected % windowsize === 0) c.send(encodeAck(packet.block), port);
    if (last) return { data: Buffer.concat(chunks), wires };
    expected++;
  }
}

for (const engine of TFTP_ENGINES) {
  test.serial(`${engine}: OVMF size probe: OACK with tsize, ERROR 8 is a normal end; then windows of 4 are really sent`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: PATIENT });
    const size = 74213;
    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { tsize: '0', blksize: '1468', windowsize: '4' }), srv.port);
    const oack = await c.expect('oack');
    t.not(oack.port, srv.port, 'transfers run on their own port');
    t.deepEqual({ ...oack.packet.options }, { blksize: '1468', tsize: String(size), windowsize: '4' });
    c.send(encodeError(8, 'User aborted the transfer'), oack.port);
    await new Promise((r) => setTimeout(r, 100));
    t.true(srv.logs.some((l) => l.outcome === 'probe-aborted' && l.level === 30));
    t.is(await srv.counter('tftpTransfers', { outcome: 'probe-aborted' }), 1);

    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { blksize: '1468', windowsize: '4' }), srv.port);
    const o2 = await c.expect('oack');
    c.send(encodeAck(0), o2.port);
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push((await c.expect('data')).packet.block);
    t.deepEqual(first, [1, 2, 3, 4]);
    t.is(await c.next(300), undefined, 'nothing beyond the window before its ACK');
    // Pretend block 6 was lost: ACK 5 after the next window, and the window restarts at 6.
    c.send(encodeAck(4), o2.port);
    const second: number[] = [];
    for (let i = 0; i < 4; i++) second.push((await c.expect('data')).packet.block);
    t.deepEqual(second, [5, 6, 7, 8]);
    c.send(encodeAck(5), o2.port);
    const third: number[] = [];
    for (let i = 0; i < 4; i++) third.push((await c.expect('data')).packet.block);
    t.deepEqual(third, [6, 7, 8, 9]);
    c.send(encodeAck(9), o2.port);
    // Finish: blocks 10.. until the short last block (51 blocks in all).
    let last = 9;
    for (;;) {
      const { packet } = await c.expect('data');
      last = packet.block;
      if (packet.data.length < 1468) break;
      if (last % 4 === 1) c.send(encodeAck(last), o2.port); // windows now start at 10, 14, …
    }
    c.send(encodeAck(last), o2.port);
    t.is(last, Math.floor(size / 1468) + 1);
    await new Promise((r) => setTimeout(r, 100));
    t.is(await srv.counter('tftpTransfers', { outcome: 'ok' }), 1);
  });

  test.serial(`${engine}: duplicate ACKs never trigger a resend (no Sorcerer's Apprentice)`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: PATIENT });
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    const d1 = await c.expect('data');
    t.is(d1.packet.block, 1);
    for (let i = 0; i < 3; i++) c.send(encodeAck(1), d1.port);
    t.is((await c.expect('data')).packet.block, 2);
    t.is(await c.next(300), undefined, 'one DATA 2 for three ACK 1');
    c.send(encodeAck(0), d1.port); // old ACK
    c.send(encodeAck(40), d1.port); // ACK for a block never sent
    t.is(await c.next(300), undefined);
    t.is(await srv.counter('tftpRetransmissions'), 0);
  });

  test.serial(`${engine}: a repeated ACK a round trip after the window answers at once, not after the backed-off timer`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: { minRtoMs: 200, initialRtoMs: 200, maxRtoMs: 20_000, maxRetries: 8 } });
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    const d1 = await c.expect('data');
    c.send(encodeAck(1), d1.port);
    t.is((await c.expect('data')).packet.block, 2);
    // DATA 2 unacknowledged: resent at ~200, ~600 and ~1400 ms; the timer's next turn is ~1.6 s later.
    for (let i = 0; i < 3; i++) t.is((await c.expect('data')).packet.block, 2);
    await new Promise((r) => setTimeout(r, 300));
    c.send(encodeAck(1), d1.port); // what a client that timed out sends
    t.is((await c.next(600))?.packet.op, 'data', 'the window comes back well before the timer');
  });

  test.serial(`${engine}: a lost DATA is sent again on timeout, within a bounded retry budget`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: { minRtoMs: 20, initialRtoMs: 20, maxRtoMs: 40, maxRetries: 3 } });
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    const blocks: number[] = [];
    for (let i = 0; i < 4; i++) blocks.push((await c.expect('data')).packet.block);
    t.deepEqual(blocks, [1, 1, 1, 1], 'first send and three retransmissions');
    t.is(await c.next(500), undefined, 'then it gives up');
    t.is(await srv.counter('tftpRetransmissions'), 3);
    t.is(await srv.counter('tftpTransfers', { outcome: 'timeout' }), 1);
    t.is(srv.server.transfers, 0);
    t.true(srv.logs.some((l) => l.outcome === 'timeout' && l.level === 40));
  });

  test.serial(`${engine}: after a retransmission the transfer still completes intact`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: { minRtoMs: 30, initialRtoMs: 30, maxRtoMs: 60, maxRetries: 5 } });
    c.send(encodeRequest('rrq', 'one-mib.bin', 'octet', { blksize: '1024' }), srv.port);
    const o = await c.expect('oack');
    c.send(encodeAck(0), o.port);
    const d1 = await c.expect('data'); // not acknowledged: wait for its resend
    const again = await c.expect('data');
    t.is(again.packet.block, 1);
    t.deepEqual(again.packet.data, d1.packet.data);
    c.send(encodeAck(1), o.port);
    const chunks = [Buffer.from(d1.packet.data)];
    for (;;) {
      const { packet } = await c.expect('data');
      if (packet.block === (chunks.length & 0xffff)) {
        c.send(encodeAck(packet.block), o.port); // a resent duplicate of what we have
        continue;
      }
      chunks.push(Buffer.from(packet.data));
      c.send(encodeAck(packet.block), o.port);
      if (packet.data.length < 1024) break;
    }
    t.is(sha(Buffer.concat(chunks)), root.sums['one-mib.bin']!);
  });

  test.serial(`${engine}: block numbers wrap past 65535 (to 0) and every byte arrives`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine });
    c.send(encodeRequest('rrq', 'wrap.bin', 'octet', { blksize: '8', windowsize: '64', tsize: '0' }), srv.port);
    const o = await c.expect('oack');
    t.is(o.packet.options.tsize, String(8 * 70_002 + 3));
    c.send(encodeAck(0), o.port);
    const { data, wires } = await fetchAll(c, o.port, 8, 64);
    t.is(wires.length, 70_003);
    t.deepEqual(wires.slice(65_533, 65_538), [65_534, 65_535, 0, 1, 2]);
    const want = Buffer.alloc(8 * 70_002 + 3);
    for (let i = 0; i < want.length; i++) want[i] = (i * 7 + (i >> 8)) & 0xff;
    t.true(data.equals(want));
  });

  test.serial(`${engine}: a file that is an exact multiple of blksize ends with an empty block`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine });
    c.send(encodeRequest('rrq', 'one-mib.bin', 'octet', { blksize: '8192', windowsize: '8' }), srv.port);
    const o = await c.expect('oack');
    c.send(encodeAck(0), o.port);
    const { data, wires } = await fetchAll(c, o.port, 8192, 8);
    t.is(wires.length, 129);
    t.is(sha(data), root.sums['one-mib.bin']!);
  });

  test.serial(`${engine}: the cap on concurrent transfers answers ERROR "busy" at once`, async (t) => {
    const srv = await startServer(root.dir, { engine, maxTransfers: 1, retransmit: PATIENT });
    const a = await RawClient.open();
    const b = await RawClient.open();
    t.teardown(() => {
      a.close();
      b.close();
      return srv.stop();
    });
    a.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    await a.expect('data');
    b.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    const e = await b.expect('error');
    t.is(e.packet.code, 0);
    t.regex(e.packet.message, /busy/i);
    t.is(e.port, srv.port);
    t.is(await srv.counter('tftpTransfers', { outcome: 'busy' }), 1);
  });

  test.serial(`${engine}: a retransmitted RRQ does not start a second transfer; a different one from the same port supersedes it silently`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: PATIENT });
    const rrq = encodeRequest('rrq', 'undionly.kpxe', 'octet', { tsize: '0' });
    c.send(rrq, srv.port);
    const o1 = await c.expect('oack');
    c.send(rrq, srv.port);
    t.is(await c.next(300), undefined);
    t.is(srv.server.transfers, 1);
    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { blksize: '1468' }), srv.port);
    // The old transfer ends without an ERROR: the first packet the client sees is the new OACK.
    const o2 = await c.expect('oack');
    t.not(o2.port, o1.port);
    t.is(o2.packet.options.blksize, '1468');
    t.is(srv.server.transfers, 1);
  });

  test.serial(`${engine}: mail mode is refused, WRQ is refused from the listening port`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine });
    c.send(encodeRequest('rrq', 'undionly.kpxe', 'mail'), srv.port);
    t.is((await c.expect('error')).packet.code, 4);
    c.send(encodeRequest('wrq', 'x.bin'), srv.port);
    const e = await c.expect('error');
    t.is(e.packet.code, 2);
    t.is(e.port, srv.port);
  });

  test.serial(`${engine}: firmware listed but failing its checksum is never served, and the log says why`, async (t) => {
    const bad = await makeRoot();
    t.teardown(() => bad.cleanup());
    await writeFile(path.join(bad.dir, 'ipxe.efi'), 'not the real one');
    await writeFile(path.join(bad.dir, 'SHA256SUMS'), `${bad.sums['undionly.kpxe']!}  undionly.kpxe\n${'0'.repeat(64)}  ipxe.efi\n`);
    const srv = await startServer(bad.dir, { engine });
    const c = await RawClient.open();
    t.teardown(() => {
      c.close();
      return srv.stop();
    });
    c.send(encodeRequest('rrq', 'ipxe.efi'), srv.port);
    t.is((await c.expect('error')).packet.code, 1);
    t.regex(String(srv.logs.find((l) => l.file === 'ipxe.efi')?.detail), /checksum/);
  });

  test.serial(`${engine}: malformed packets on the listening and the transfer port are dropped and counted`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: PATIENT });
    const junk = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 9, 1, 2]), Buffer.from([0, 1, 0x41]), Buffer.from([0, 4, 0, 1])];
    for (const j of junk) c.send(j, srv.port);
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    const d = await c.expect('data');
    for (const j of junk.slice(0, 4)) c.send(j, d.port);
    c.send(encodeAck(1), d.port);
    t.is((await c.expect('data')).packet.block, 2);
    t.is(await srv.counter('malformedPackets', { protocol: 'tftp' }), 9);
  });

  test.serial(`${engine}: stopping the server ends transfers in flight with an ERROR`, async (t) => {
    const srv = await startServer(root.dir, { engine, retransmit: PATIENT });
    const c = await RawClient.open();
    t.teardown(() => c.close());
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    await c.expect('data');
    await srv.stop();
    t.is((await c.expect('error')).packet.code, 0);
    t.is(await srv.counter('tftpTransfers', { outcome: 'shutdown' }), 1);
  });
}
