/**
 * Transfer IDs (RFC 1350 section 4), from scripted clients on 127.0.0.1: a packet from the
 * right address but a stray port is answered ERROR 5 and the transfer goes on unharmed; a
 * new RRQ from the port of a transfer in flight replaces it without the old one sending an
 * ERROR that would reach the client's new transfer first.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { encodeAck, encodeError, encodeRequest, ERR } from '../../src/tftp/packet.ts';
import { DEFAULT_RETRANSMIT } from '../../src/tftp/session.ts';
import { makeRoot, startServer, TFTP_ENGINES, type Root } from './helpers.ts';
import { RawClient, serverWithClient } from './raw-client.ts';

/** Retransmission slow enough that any packet seen in a short wait was caused by what a client did. */
const PATIENT = { ...DEFAULT_RETRANSMIT, minRtoMs: 10_000, initialRtoMs: 10_000, maxRtoMs: 10_000 };

let root: Root;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test.before(async () => {
  root = await makeRoot();
});
test.after.always(async () => root?.cleanup());

/** Acknowledges DATA from `next` on, lock-step, until the short last block; returns the bytes. */
async function readRest(c: RawClient, port: number, blksize: number, have: Buffer[], from: number): Promise<Buffer> {
  for (let next = from; ; ) {
    const { packet } = await c.expect('data');
    if (packet.block !== (next & 0xffff)) continue;
    have.push(Buffer.from(packet.data));
    c.send(encodeAck(packet.block), port);
    if (packet.data.length < blksize) return Buffer.concat(have);
    next++;
  }
}

for (const engine of TFTP_ENGINES) {
  test.serial(`${engine}: a packet from a stray port gets ERROR 5 "Unknown transfer ID" on that port, and the transfer continues unharmed`, async (t) => {
    const srv = await startServer(root.dir, { engine, retransmit: PATIENT });
    const c = await RawClient.open();
    const stray = await RawClient.open();
    t.teardown(() => {
      c.close();
      stray.close();
      return srv.stop();
    });
    c.send(encodeRequest('rrq', 'one-mib.bin', 'octet', { blksize: '1024' }), srv.port);
    const o = await c.expect('oack');
    c.send(encodeAck(0), o.port);
    const d1 = await c.expect('data');
    t.is(d1.packet.block, 1);

    // The stray ACKs block 1 for the client: it is told off, and the transfer does not move.
    stray.send(encodeAck(1), o.port);
    const e = await stray.expect('error');
    t.is(e.packet.code, ERR.UNKNOWN_TID);
    t.is(e.packet.message, 'Unknown transfer ID');
    t.is(e.port, o.port, 'answered from the transfer port');
    t.is(await c.next(300), undefined, 'the stray ACK sent nothing to the client');

    // Any TFTP packet is answered so; an ERROR never is (two servers would bounce them for ever), junk is only counted.
    stray.send(encodeRequest('rrq', 'undionly.kpxe'), o.port);
    t.is((await stray.expect('error')).packet.code, ERR.UNKNOWN_TID);
    stray.send(encodeError(ERR.NOT_DEFINED, 'go away'), o.port);
    stray.send(Buffer.from([0, 9]), o.port);
    t.is(await stray.next(300), undefined);
    t.is(await c.next(100), undefined);

    c.send(encodeAck(1), o.port);
    const data = await readRest(c, o.port, 1024, [Buffer.from(d1.packet.data)], 2);
    t.is(sha(data), root.sums['one-mib.bin']!);
    await new Promise((r) => setTimeout(r, 100));
    t.is(await srv.counter('tftpTransfers', { outcome: 'ok' }), 1);
    t.is(await srv.counter('tftpRetransmissions'), 0);
    t.is(await srv.counter('malformedPackets', { protocol: 'tftp' }), 1);
  });

  test.serial(`${engine}: a stray port on a windowed transfer: ERROR 5 to it, every window still arrives`, async (t) => {
    const srv = await startServer(root.dir, { engine, retransmit: PATIENT });
    const c = await RawClient.open();
    const stray = await RawClient.open();
    t.teardown(() => {
      c.close();
      stray.close();
      return srv.stop();
    });
    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { blksize: '1468', windowsize: '4' }), srv.port);
    const o = await c.expect('oack');
    stray.send(encodeAck(0), o.port); // before the client's own ACK 0: must not start the transfer
    t.is((await stray.expect('error')).packet.code, ERR.UNKNOWN_TID);
    t.is(await c.next(300), undefined);
    c.send(encodeAck(0), o.port);
    const chunks: Buffer[] = [];
    for (let block = 1; ; block++) {
      const { packet } = await c.expect('data');
      t.is(packet.block, block);
      chunks.push(Buffer.from(packet.data));
      if (block % 4 === 0) stray.send(encodeAck(block + 4), o.port);
      const last = packet.data.length < 1468;
      if (last || block % 4 === 0) c.send(encodeAck(block), o.port);
      if (last) break;
    }
    t.is(sha(Buffer.concat(chunks)), root.sums['undionly.kpxe']!);
  });

  test.serial(`${engine}: a new RRQ from the port of a transfer in flight supersedes it silently: the next packet is the new transfer`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: PATIENT });
    // Mid-transfer, lock-step: DATA 2 is out when the firmware gives up and asks again from the same port.
    c.send(encodeRequest('rrq', 'undionly.kpxe'), srv.port);
    const d1 = await c.expect('data');
    c.send(encodeAck(1), d1.port);
    t.is((await c.expect('data')).packet.block, 2);

    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { blksize: '1468' }), srv.port);
    const first = await c.next(2000);
    t.is(first?.packet.op, 'oack', `the first packet after the new RRQ: ${JSON.stringify(first?.packet)}`);
    t.not(first!.port, d1.port);
    // The old transfer's port is closed: the client's late ACK there changes nothing and draws no ERROR.
    c.send(encodeAck(2), d1.port);
    t.is(await c.next(300), undefined, 'no ERROR from the old transfer, late or early');
    c.send(encodeAck(0), first!.port);
    const data = await readRest(c, first!.port, 1468, [], 1);
    t.is(sha(data), root.sums['undionly.kpxe']!);
    await new Promise((r) => setTimeout(r, 100));
    t.is(await srv.counter('tftpTransfers', { outcome: 'ok' }), 1);
    t.is(await srv.counter('tftpTransfers', { outcome: 'aborted' }), 1);
    t.true(srv.logs.some((l) => l.outcome === 'aborted' && l.detail === 'superseded by a new request'));
    t.is(srv.server.transfers, 0);
  });

  test.serial(`${engine}: the OVMF size probe whose ERROR 8 was lost: the real read replaces it and no ERROR reaches the client`, async (t) => {
    const { srv, c } = await serverWithClient(t, root.dir, { engine, retransmit: PATIENT });
    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { tsize: '0', blksize: '1468', windowsize: '4' }), srv.port);
    const probe = await c.expect('oack');
    c.send(encodeRequest('rrq', 'undionly.kpxe', 'octet', { blksize: '1468', windowsize: '4' }), srv.port);
    const real = await c.expect('oack');
    t.not(real.port, probe.port);
    t.deepEqual({ ...real.packet.options }, { blksize: '1468', windowsize: '4' });
    c.send(encodeAck(0), real.port);
    const blocks: number[] = [];
    for (let i = 0; i < 4; i++) blocks.push((await c.expect('data')).packet.block);
    t.deepEqual(blocks, [1, 2, 3, 4]);
    t.is(await c.next(300), undefined, 'nothing else, and no ERROR');
  });
}
