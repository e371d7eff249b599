/**
 * Bounded DHCP load generator: PXE DISCOVERs broadcast from 0.0.0.0:68 on one interface of
 * a client namespace, the way PXE ROMs send them (perfdhcp always acts as a relay, which
 * is not the path firmware uses). Each DISCOVER has its own xid; MACs cycle through `macs`
 * machines (0: a new machine every time).
 *   node --import tsx bench/dhcp/discover-gen.ts '{"iface":"eth0","mode":"rate","rate":1000,"seconds":5}'
 * mode rate:   paced at `rate`/s for `seconds`; latency percentiles of the answered ones.
 * mode closed: `window` DISCOVERs outstanding at all times for `seconds` (a lost one is
 *              written off after 500 ms); throughput.
 * With `bootServerFrom` the requests are UEFI REQUESTs to the PXE boot server on 4011 instead.
 * Prints one JSON line.
 */
import { openDeviceSocket } from '../../src/net/bind-device.ts';
import { encodePacket, tryParsePacket } from '../../src/dhcp/packet.ts';
import { MessageType } from '../../src/dhcp/options.ts';
import { request, type ClientKind } from '../../test/dhcp/fixtures.ts';
import type { Mac } from '../../src/net/mac.ts';

interface GenScript {
  iface: string;
  mode: 'rate' | 'closed';
  rate?: number;
  window?: number;
  seconds: number;
  kind?: ClientKind;
  /** Only count replies from this server address (dnsmasq and we may both be up in other setups). */
  server?: string;
  /** How many distinct machines (MACs) the DISCOVERs cycle through; 0 = a new MAC every time. */
  macs?: number;
  /**
   * Set: ask the PXE boot server instead, as OVMF does once the site's DHCP gave it this
   * address (wire.md): a REQUEST with ciaddr, from this address:4011 to `server`:4011.
   */
  bootServerFrom?: string;
}

const s = JSON.parse(process.argv[2] ?? '{}') as GenScript;
s.macs = Math.max(0, Math.min(s.macs ?? 0, 1 << 24));
const seconds = Math.min(Math.max(s.seconds, 1), 30);
const kind = s.kind ?? 'bios';
const bootServer = s.bootServerFrom !== undefined;
if (bootServer && !s.server) throw new Error('bootServerFrom needs server');
const { socket } = await openDeviceSocket({ device: s.iface, port: bootServer ? 4011 : 68, reuseAddr: true, recvBufferSize: 8 * 1024 * 1024 });

const XID_BASE = (Math.floor(Math.random() * 0x7fff) << 16) >>> 0;
const sentAt = new Map<number, bigint>();
const latencies: number[] = [];
let sent = 0;
let answered = 0;
let stray = 0;

function packetFor(n: number): Buffer {
  const i = s.macs ? n % s.macs : n;
  const mac =
    `02:b0:${((i >> 24) & 255).toString(16).padStart(2, '0')}:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` as Mac;
  const xid = (XID_BASE + n) >>> 0;
  return encodePacket(bootServer ? request({ kind, mac, xid, type: MessageType.REQUEST, ciaddr: s.bootServerFrom }) : request({ kind, mac, xid, type: MessageType.DISCOVER }));
}

let onAnswer: () => void = () => undefined;
socket.on('message', (data, rinfo) => {
  const t = process.hrtime.bigint();
  if (s.server && rinfo.address !== s.server) return;
  const r = tryParsePacket(data);
  if (!r.ok || r.packet.op !== 2) return;
  const start = sentAt.get(r.packet.xid);
  if (start === undefined) {
    stray += 1;
    return;
  }
  sentAt.delete(r.packet.xid);
  answered += 1;
  latencies.push(Number(t - start) / 1e6);
  onAnswer();
});

function send(i: number): void {
  const bytes = packetFor(i);
  sentAt.set((XID_BASE + i) >>> 0, process.hrtime.bigint());
  sent += 1;
  if (bootServer) socket.send(bytes, 4011, s.server);
  else socket.send(bytes, 67, '255.255.255.255');
}

const started = process.hrtime.bigint();
const elapsedMs = () => Number(process.hrtime.bigint() - started) / 1e6;
const endMs = seconds * 1000;

if (s.mode === 'rate') {
  const rate = Math.min(Math.max(s.rate ?? 1000, 1), 50_000);
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(Math.floor((elapsedMs() / 1000) * rate), rate * seconds);
      while (i < due) send(i++);
      if (elapsedMs() >= endMs) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
} else {
  const window = Math.min(Math.max(s.window ?? 32, 1), 1024);
  let i = 0;
  await new Promise<void>((resolve) => {
    const refill = () => {
      if (elapsedMs() >= endMs) return resolve();
      // Write off DISCOVERs unanswered for 500 ms so a drop cannot stall the window.
      const now = process.hrtime.bigint();
      for (const [xid, at] of sentAt) if (Number(now - at) / 1e6 > 500) sentAt.delete(xid);
      while (sentAt.size < window) send(i++);
    };
    onAnswer = refill;
    const timer = setInterval(refill, 20);
    refill();
    setTimeout(() => {
      clearInterval(timer);
      resolve();
    }, endMs);
  });
}
const activeMs = elapsedMs();
// Late answers still count for latency but not for throughput.
await new Promise((r) => setTimeout(r, 300));
socket.close();
latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : null);
process.stdout.write(
  `${JSON.stringify({
    mode: s.mode,
    kind,
    seconds: +(activeMs / 1000).toFixed(2),
    sent,
    answered,
    lost: sent - answered,
    stray,
    perSecond: Math.round(answered / (activeMs / 1000)),
    p50ms: pct(50),
    p99ms: pct(99),
  })}\n`,
);
