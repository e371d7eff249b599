/**
 * netascii (RFC 1350): LF goes as CR LF and CR as CR NUL, converted while the transfer runs.
 * tftp-hpa's client asks for netascii unless told `-m binary` and converts back, so a text
 * file fetched in its default mode must arrive byte for byte, bare CRs included. The scripted
 * client checks what goes on the wire: the converted stream, blocks cut from it, windows
 * resent from it, and no tsize in the OACK (as tftp-hpa's server, which cannot know it).
 */
import test from 'ava';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NetasciiSource, toNetascii } from '../../src/tftp/netascii.ts';
import { encodeAck, encodeRequest } from '../../src/tftp/packet.ts';
import { DEFAULT_RETRANSMIT } from '../../src/tftp/session.ts';
import { FileSource, MemorySource } from '../../src/tftp/source.ts';
import { makeRoot, run, startServer, tempDir, type Root, type Running } from './helpers.ts';
import { RawClient } from './raw-client.ts';

/** What a netascii receiver does (tftp-hpa's client): CR LF back to LF, CR NUL back to CR. */
function fromNetascii(wire: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < wire.length; i++) {
    const b = wire[i]!;
    if (b === 0x0d && (wire[i + 1] === 0x0a || wire[i + 1] === 0x00)) {
      out.push(wire[i + 1] === 0x0a ? 0x0a : 0x0d);
      i++;
    } else out.push(b);
  }
  return Buffer.from(out);
}

/** Lines of text, a few CR LF pairs, bare CRs, NULs, and more than one 64 KiB input chunk. */
function mixedText(): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < 9000; i++) {
    parts.push(`line ${i}: kernel /images/vmlinuz console=ttyS0`);
    parts.push(i % 7 === 0 ? '\r\n' : i % 11 === 0 ? '\r' : i % 13 === 0 ? '\0\n' : '\n');
  }
  return Buffer.from(`${parts.join('')}\r`, 'latin1');
}

const FILES: Record<string, Buffer> = {
  'pxelinux.cfg-default': Buffer.from('DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img\n'),
  'bare-cr.txt': Buffer.from('one\rtwo\r\rthree\r\nfour\n\r\n\r'),
  'mixed.txt': mixedText(),
  // 510 bytes and one LF: exactly one 512-byte block on the wire, so an empty DATA 2 ends it.
  'one-block.txt': Buffer.from(`${'a'.repeat(510)}\n`),
  'empty.txt': Buffer.alloc(0),
};

let root: Root;
let srv: Running;
let out: { dir: string; cleanup: () => Promise<void> };

test.before(async () => {
  root = await makeRoot();
  for (const [name, body] of Object.entries(FILES)) await writeFile(path.join(root.dir, name), body);
  srv = await startServer(root.dir, { retransmit: { ...DEFAULT_RETRANSMIT, minRtoMs: 50, initialRtoMs: 50, maxRtoMs: 400 } });
  out = await tempDir();
});

test.after.always(async () => {
  await srv?.stop();
  await root?.cleanup();
  await out?.cleanup();
});

test('toNetascii: LF → CR LF, CR → CR NUL, everything else unchanged', (t) => {
  const cases: [string, string][] = [
    ['', ''],
    ['plain', 'plain'],
    ['a\nb', 'a\r\nb'],
    ['a\rb', 'a\r\0b'],
    ['a\r\nb', 'a\r\0\r\nb'],
    ['\n\n', '\r\n\r\n'],
    ['\r', '\r\0'],
    ['a\0b', 'a\0b'],
  ];
  for (const [input, wire] of cases) t.is(toNetascii(Buffer.from(input, 'latin1')).toString('latin1'), wire, JSON.stringify(input));
  for (const body of Object.values(FILES)) t.deepEqual(fromNetascii(toNetascii(body)), body);
});

test('NetasciiSource read forward window by window gives the whole converted file; its size is a lower bound until the end', async (t) => {
  const body = FILES['mixed.txt']!;
  const file = path.join(root.dir, 'mixed.txt');
  const handle = await open(file, 'r');
  const src = new NetasciiSource(new FileSource(handle, body.length, 4096));
  const wire = toNetascii(body);
  t.is(src.size, body.length, 'before any read: one byte per input byte');
  t.is(src.peek(0, 512), undefined, 'nothing is converted before a load');
  const got: Buffer[] = [];
  const window = 8 * 1468;
  for (let offset = 0; offset < src.size; offset += window) {
    if (!src.peek(offset, Math.min(window, src.size - offset))) await src.load(offset, window);
    const chunk = src.peek(offset, Math.min(window, src.size - offset));
    t.truthy(chunk, `offset ${offset}`);
    t.true(src.size <= wire.length);
    got.push(Buffer.from(chunk!));
  }
  t.is(src.size, wire.length, 'exact at the end');
  t.true(Buffer.concat(got).equals(wire));
  await t.throwsAsync(() => src.load(0, 512), { message: /go back/ });
  await src.close();
});

test('NetasciiSource over bytes in memory', async (t) => {
  const src = new NetasciiSource(new MemorySource(Buffer.from('a\nb\r')));
  await src.load(0, 512);
  t.is(src.size, 6);
  t.is(src.peek(0, 512)?.toString('latin1'), 'a\r\nb\r\0');
  t.is(src.peek(6, 512)?.length, 0);
});

for (const name of Object.keys(FILES)) {
  test.serial(`tftp-hpa in its default (netascii) mode fetches ${name} intact`, async (t) => {
    const local = path.join(out.dir, `hpa-${name}`);
    // No -m binary: tftp-hpa's default mode is netascii, which it converts back on arrival.
    const r = await run('tftp', ['127.0.0.1', String(srv.port), '-c', 'get', name, local]);
    t.is(r.code, 0, r.stderr);
    t.is(`${r.stdout}${r.stderr}`.trim(), '', 'tftp-hpa prints nothing on success');
    t.true((await readFile(local)).equals(FILES[name]!));
    const line = srv.logs.findLast((l) => l.file === name);
    t.is(line?.outcome, 'ok');
    t.is(line?.mode, 'netascii');
    t.is(line?.bytes, toNetascii(FILES[name]!).length, 'bytes on the wire are the converted ones');
  });
}

test.serial('netascii on the wire: the converted stream in windows, resent intact after a timeout, and no tsize in the OACK', async (t) => {
  const body = FILES['mixed.txt']!;
  const wire = toNetascii(body);
  const c = await RawClient.open();
  t.teardown(() => c.close());
  c.send(encodeRequest('rrq', 'mixed.txt', 'netascii', { tsize: '0', blksize: '1024', windowsize: '4' }), srv.port);
  const o = await c.expect('oack');
  t.deepEqual({ ...o.packet.options }, { blksize: '1024', windowsize: '4' }, 'tsize left out, as tftp-hpa does');
  c.send(encodeAck(0), o.port);
  // The first window goes unacknowledged: it must come again, the same bytes.
  const first: Buffer[] = [];
  for (let i = 0; i < 4; i++) first.push(Buffer.from((await c.expect('data')).packet.data));
  const again: Buffer[] = [];
  for (let i = 0; i < 4; i++) again.push(Buffer.from((await c.expect('data')).packet.data));
  t.deepEqual(again, first);
  const chunks = [...first];
  let block = 4;
  c.send(encodeAck(block), o.port);
  for (;;) {
    const { packet } = await c.expect('data');
    if (packet.block !== ((block + 1) & 0xffff)) continue; // a resent window that crossed our ACK
    block++;
    chunks.push(Buffer.from(packet.data));
    const last = packet.data.length < 1024;
    if (last || block % 4 === 0) c.send(encodeAck(packet.block), o.port);
    if (last) break;
  }
  const got = Buffer.concat(chunks);
  t.is(got.length, wire.length);
  t.true(got.equals(wire));
  t.true(fromNetascii(got).equals(body));
  t.is(block, Math.floor(wire.length / 1024) + 1);
});

test.serial('a netascii request asking only tsize gets no OACK but DATA 1 at once (RFC 2347: no option granted)', async (t) => {
  const c = await RawClient.open();
  t.teardown(() => c.close());
  c.send(encodeRequest('rrq', 'bare-cr.txt', 'netascii', { tsize: '0' }), srv.port);
  const d = await c.expect('data');
  t.is(d.packet.block, 1);
  t.is(d.packet.data.toString('latin1'), toNetascii(FILES['bare-cr.txt']!).toString('latin1'));
  c.send(encodeAck(1), d.port);
});

test.serial('the same file in octet mode is sent as it is, with tsize', async (t) => {
  const c = await RawClient.open();
  t.teardown(() => c.close());
  c.send(encodeRequest('rrq', 'bare-cr.txt', 'octet', { tsize: '0' }), srv.port);
  const o = await c.expect('oack');
  t.is(o.packet.options.tsize, String(FILES['bare-cr.txt']!.length));
  c.send(encodeAck(0), o.port);
  const d = await c.expect('data');
  t.true(d.packet.data.equals(FILES['bare-cr.txt']!));
  c.send(encodeAck(1), o.port);
});
