/**
 * Bounded DORA load generator, run inside a client namespace:
 *   node --import tsx bench/dhcp/full-load.ts --iface eth0 --count 20000 --concurrency 64 --seconds 10
 * Sends DISCOVER then REQUEST (selecting) from 0.0.0.0:68 with a new chaddr per
 * transaction, the broadcast flag set (fake chaddrs cannot receive unicast), and counts a
 * transaction done when its ACK arrives. Stops after --count transactions or --seconds,
 * whichever comes first; a step unanswered for --timeout ms is counted lost (no retries).
 * Prints one JSON line: completed, lost, naks, seconds, rate, p50/p99 DORA latency in ms.
 */
import { parseArgs } from 'node:util';
import { openDeviceSocket } from '../../src/net/bind-device.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import { macFromBytes } from '../../src/net/mac.ts';
import { emptyRequest, encodePacket, FLAG_BROADCAST, tryParsePacket } from '../../src/dhcp/packet.ts';

const { values } = parseArgs({
  options: {
    iface: { type: 'string', default: 'eth0' },
    count: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '2000' },
    'mac-base': { type: 'string', default: '0' },
    /** Ask as BIOS PXE firmware does (options 93 and 60): each client is then a machine on the boot timeline. */
    pxe: { type: 'boolean', default: false },
    /** Print `ACK <ip> <mac>` per completed transaction (the crash test checks them against the lease file). */
    'print-acks': { type: 'boolean', default: false },
  },
});
const count = Math.min(Number(values.count), 1_000_000);
const concurrency = Math.min(Number(values.concurrency), 4096);
const limitMs = Math.min(Number(values.seconds), 120) * 1000;
const stepTimeout = Number(values.timeout);
const macBase = Number(values['mac-base']);

const { socket } = await openDeviceSocket({ device: values.iface!, port: 68, reuseAddr: true, recvBufferSize: 8 * 1024 * 1024 });

interface Tx {
  n: number;
  xid: number;
  stage: 'offer' | 'ack';
  t0: number;
  timer: NodeJS.Timeout;
}
const pending = new Map<number, Tx>();
let started = 0;
let completed = 0;
let lost = 0;
let naks = 0;
const latencies: number[] = [];
const t0 = performance.now();
let finish: () => void;
const finished = new Promise<void>((r) => (finish = r));

function packet(n: number, xid: number, type: number, serverId?: string, requested?: string): Buffer {
  const p = emptyRequest();
  p.xid = xid;
  p.flags = FLAG_BROADCAST;
  p.chaddr.writeUInt16BE(0x0200, 0); // locally administered
  p.chaddr.writeUInt32BE((macBase + n) >>> 0, 2);
  p.options.setU8(Opt.MESSAGE_TYPE, type);
  if (serverId) p.options.setIp(Opt.SERVER_ID, serverId);
  if (requested) p.options.setIp(Opt.REQUESTED_IP, requested);
  p.options.set(Opt.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 6, 15, 28, 51, 54]));
  if (values.pxe) {
    p.options.set(Opt.CLIENT_ARCH, Buffer.from([0, 0]));
    p.options.setString(Opt.VENDOR_CLASS, 'PXEClient:Arch:00000:UNDI:002001');
  }
  return encodePacket(p);
}

function send(buf: Buffer): void {
  socket.send(buf, 67, '255.255.255.255');
}

function startOne(): void {
  if (started >= count || performance.now() - t0 > limitMs) {
    if (pending.size === 0) finish();
    return;
  }
  const n = started++;
  const xid = (0x10000000 + n) >>> 0;
  const tx: Tx = { n, xid, stage: 'offer', t0: performance.now(), timer: setTimeout(() => expire(tx), stepTimeout) };
  pending.set(xid, tx);
  send(packet(n, xid, MessageType.DISCOVER));
}

function end(tx: Tx): void {
  clearTimeout(tx.timer);
  pending.delete(tx.xid);
  startOne();
}

function expire(tx: Tx): void {
  lost++;
  end(tx);
}

socket.on('message', (data) => {
  const parsed = tryParsePacket(data);
  if (!parsed.ok || parsed.packet.op !== 2) return;
  const p = parsed.packet;
  const tx = pending.get(p.xid);
  if (!tx) return;
  const type = p.options.messageType();
  if (tx.stage === 'offer' && type === MessageType.OFFER) {
    tx.stage = 'ack';
    clearTimeout(tx.timer);
    tx.timer = setTimeout(() => expire(tx), stepTimeout);
    send(packet(tx.n, tx.xid, MessageType.REQUEST, p.options.serverId(), p.yiaddr));
  } else if (tx.stage === 'ack' && type === MessageType.ACK) {
    completed++;
    if (values['print-acks']) process.stdout.write(`ACK ${p.yiaddr} ${macFromBytes(p.chaddr.subarray(0, 6))}\n`);
    latencies.push(performance.now() - tx.t0);
    end(tx);
  } else if (type === MessageType.NAK) {
    naks++;
    end(tx);
  }
});

for (let i = 0; i < concurrency; i++) startOne();
await finished;
const seconds = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const q = (f: number) => (latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))]!.toFixed(2)) : null);
process.stdout.write(`${JSON.stringify({ completed, lost, naks, started, seconds: Number(seconds.toFixed(3)), rate: Math.round(completed / seconds), p50: q(0.5), p99: q(0.99) })}\n`);
socket.close();
