/**
 * The scripted rack for bench/storm (run.ts starts it inside the client namespace, on CPU 1):
 * N PXE machines in one process, each powering on at a random moment within --spread-ms and
 * walking the boot a BIOS machine with a legacy PXE ROM and iPXE walks:
 *
 *   1. DHCP as the PXE ROM (DISCOVER/OFFER/REQUEST/ACK, a distinct MAC and SMBIOS UUID each);
 *   2. TFTP of the boot file the ACK names: the ROM's size probe (`tsize`, then ERROR 8), then
 *      the transfer at blksize 1456, lock-step, as legacy PXE ROMs do (shared/notes/wire.md);
 *   3. DHCP again as iPXE (option 77 `iPXE`, 175), whose ACK names the boot script URL;
 *   4. HTTP GET of that script (`/boot.ipxe`), then the `chain` it names with iPXE's
 *      `${mac:hexhyp}`/`${uuid}` filled in (`/ipxe?uuid=…&mac=…`), then the `kernel` that
 *      names, all on one keep-alive connection as iPXE keeps it.
 *
 * The time of a machine is from its first DISCOVER to the last byte of its kernel. Every
 * machine has its own IPv4 (run.ts puts the whole DHCP range on the client link, since a
 * server may hand out any address of it), and binds its TFTP and HTTP sockets to the address
 * it was given, so servers see one client per address as in a real rack. DHCP asks for
 * broadcast replies in both stages: the chaddrs are made up, so a unicast to one would not be
 * delivered (iPXE itself does not set the flag; the servers' cost is the same).
 *
 * Retries as the firmware does them: DHCP after 4, 8, 16 s (PXE spec) and from DISCOVER again after a NAK, TFTP's ACK or request
 * after 1, 2, 4, 8 s; HTTP gets none (iPXE fails the boot). Bounded: at most 5,000 machines,
 * and whatever is not done at --deadline-s counts as failed at the step it was in.
 * Prints one JSON line (results) to stdout.
 */
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MessageType, messageTypeName, Opt } from '../../src/dhcp/options.ts';
import { encodePacket, FLAG_BROADCAST, tryParsePacket, type DhcpPacket } from '../../src/dhcp/packet.ts';
import type { Mac } from '../../src/net/mac.ts';
import { encodeAck, encodeError, encodeRequest, ERR, parsePacket } from '../../src/tftp/packet.ts';
import { openDeviceSocket } from '../../src/net/bind-device.ts';
import { request as firmwareRequest } from '../../test/dhcp/fixtures.ts';

const { values } = parseArgs({
  options: {
    iface: { type: 'string', default: 'eth0' },
    clients: { type: 'string', default: '500' },
    'spread-ms': { type: 'string', default: '1000' },
    'deadline-s': { type: 'string', default: '120' },
    'mac-base': { type: 'string', default: '0' },
    /** The boot file as served, to check every TFTP copy byte for byte. */
    'boot-file': { type: 'string' },
    'kernel-bytes': { type: 'string' },
  },
});
const N = Math.max(1, Math.min(5000, Number(values.clients)));
const SPREAD_MS = Math.max(0, Math.min(10_000, Number(values['spread-ms'])));
const DEADLINE_MS = Math.max(5, Math.min(600, Number(values['deadline-s']))) * 1000;
const MAC_BASE = Number(values['mac-base']);
const BOOT_FILE_SHA = values['boot-file'] ? createHash('sha256').update(readFileSync(values['boot-file'])).digest('hex') : undefined;
const KERNEL_BYTES = values['kernel-bytes'] ? Number(values['kernel-bytes']) : undefined;

/** The blksize legacy PXE ROMs ask for (wire.md). */
const PXE_BLKSIZE = 1456;
const DHCP_RETRIES_MS = [4000, 8000, 16_000];
const TFTP_RETRIES_MS = [1000, 2000, 4000, 8000];

type Step = 'dhcp' | 'tftp' | 'ipxe-dhcp' | 'boot.ipxe' | 'ipxe' | 'kernel';
const STEPS: Step[] = ['dhcp', 'tftp', 'ipxe-dhcp', 'boot.ipxe', 'ipxe', 'kernel'];

class StepError extends Error {}

interface Machine {
  n: number;
  mac: Mac;
  uuid: string;
  guid: Buffer;
  step: Step;
  ip?: string;
  t0?: number;
  /** ms since t0 at which each step ended. */
  marks: Partial<Record<Step, number>>;
}

function macOf(n: number): Mac {
  const v = (MAC_BASE + n) >>> 0;
  return `02:bc:a5:${((v >> 16) & 0xff).toString(16).padStart(2, '0')}:${((v >> 8) & 0xff).toString(16).padStart(2, '0')}:${(v & 0xff).toString(16).padStart(2, '0')}` as Mac;
}

/** A distinct SMBIOS UUID per machine, and option 97 as firmware sends it (first three fields byte-swapped). */
function uuidOf(n: number): { uuid: string; guid: Buffer } {
  const tail = ((MAC_BASE + n) >>> 0).toString(16).padStart(12, '0');
  const uuid = `5707a000-0000-4000-8000-${tail}`;
  const hex = uuid.replaceAll('-', '');
  const swap = (s: string) => s.match(/../g)!.reverse().join('');
  return { uuid, guid: Buffer.from(`00${swap(hex.slice(0, 8))}${swap(hex.slice(8, 12))}${swap(hex.slice(12, 16))}${hex.slice(16)}`, 'hex') };
}

// ---- DHCP: one socket on 0.0.0.0:68 for every machine, replies dispatched by xid ----

const { socket: dhcpSocket } = await openDeviceSocket({ device: values.iface!, port: 68, reuseAddr: true, recvBufferSize: 8 * 1024 * 1024 });
const waitingDhcp = new Map<number, (p: DhcpPacket) => void>();
dhcpSocket.on('message', (data) => {
  const parsed = tryParsePacket(data);
  if (!parsed.ok || parsed.packet.op !== 2) return;
  waitingDhcp.get(parsed.packet.xid)?.(parsed.packet);
});

let xidSeq = (0x5700_0000 + MAC_BASE * 16) >>> 0;

function dhcpPacket(m: Machine, kind: 'bios' | 'ipxe-bios', xid: number, type: number, serverId?: string, requestedIp?: string): Buffer {
  const p = firmwareRequest({ kind, mac: m.mac, xid, type, serverId, requestedIp });
  p.flags = FLAG_BROADCAST;
  p.options.set(Opt.CLIENT_GUID, m.guid);
  return encodePacket(p);
}

/** Sends `packet` and resolves with the first reply of `want` type for `xid`, retransmitting on the PXE schedule. */
function exchange(xid: number, packet: Buffer, want: number): Promise<DhcpPacket> {
  return new Promise((resolve, reject) => {
    let attempt = 0;
    let timer: NodeJS.Timeout;
    const send = () => {
      dhcpSocket.send(packet, 67, '255.255.255.255');
      const wait = DHCP_RETRIES_MS[attempt];
      if (wait === undefined) {
        timer = setTimeout(() => done(new StepError(`no ${messageTypeName(want)} after ${attempt} tries`)), 4000);
        return;
      }
      attempt++;
      timer = setTimeout(send, wait);
    };
    const done = (err?: Error, p?: DhcpPacket) => {
      clearTimeout(timer);
      waitingDhcp.delete(xid);
      if (err) reject(err);
      else resolve(p!);
    };
    waitingDhcp.set(xid, (p) => {
      const type = p.options.messageType();
      if (type === want) done(undefined, p);
      else if (type === MessageType.NAK) done(new StepError('NAK'));
    });
    send();
  });
}

/** A NAK sends the client back to DISCOVER (RFC 2131 §4.4.1), as firmware does until its own DHCP timeout; bounded here. */
const NAK_RESTARTS = 16;
/**
 * Restarts wait a random 0–1 s (RFC 2131 §4.1's randomised delays): a rack NAKed at once and
 * restarting in step meets the same race again (dnsmasq reserves no address on OFFER).
 */
const NAK_JITTER_MS = 1000;
/** Restarts after a NAK, counted across the rack (a server that offers one address twice NAKs the loser). */
let naks = 0;

async function dora(m: Machine, kind: 'bios' | 'ipxe-bios'): Promise<DhcpPacket> {
  for (let attempt = 0; ; attempt++) {
    const xid = xidSeq++ >>> 0;
    const offer = await exchange(xid, dhcpPacket(m, kind, xid, MessageType.DISCOVER), MessageType.OFFER);
    const serverId = offer.options.serverId();
    try {
      return await exchange(xid, dhcpPacket(m, kind, xid, MessageType.REQUEST, serverId, offer.yiaddr), MessageType.ACK);
    } catch (err) {
      if (!(err instanceof StepError && err.message === 'NAK') || attempt >= NAK_RESTARTS) throw err;
      naks++;
      await new Promise((r) => setTimeout(r, Math.random() * NAK_JITTER_MS));
    }
  }
}

function bootFileOf(ack: DhcpPacket): string {
  const file = ack.options.bootfileName() ?? ack.file;
  if (!file) throw new StepError('ACK names no boot file');
  return file;
}

// ---- TFTP: the PXE ROM's probe, then lock-step at blksize 1456 from the machine's own address ----

function tftpOpen(ip: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind({ address: ip, port: 0 }, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** Sends `first` to server:69 and calls onPacket for each reply from the TID that answered, retrying the last sent packet on timeout. */
function tftpSession(
  s: dgram.Socket,
  server: string,
  first: Buffer,
  onPacket: (pkt: ReturnType<typeof parsePacket>, reply: (b: Buffer) => void, finish: (err?: Error) => void) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let tid: number | undefined;
    let last = first;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    let over = false;
    const arm = () => {
      clearTimeout(timer);
      const wait = TFTP_RETRIES_MS[attempt];
      timer = setTimeout(() => {
        if (wait === undefined || attempt >= TFTP_RETRIES_MS.length) return finish(new StepError(`TFTP timed out after ${attempt} retries`));
        attempt++;
        s.send(last, tid ?? 69, server);
        arm();
      }, wait ?? 1000);
    };
    const reply = (b: Buffer) => {
      last = b;
      attempt = 0;
      s.send(b, tid!, server);
      arm();
    };
    const finish = (err?: Error) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      s.off('message', onMessage);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (data: Buffer, rinfo: dgram.RemoteInfo) => {
      if (rinfo.address !== server) return;
      if (tid === undefined) tid = rinfo.port;
      else if (rinfo.port !== tid) return; // another transfer's TID (RFC 1350: answer ERROR 5; not needed here)
      onPacket(parsePacket(data), reply, finish);
    };
    s.on('message', onMessage);
    s.send(first, 69, server);
    arm();
  });
}

async function tftpGet(ip: string, server: string, file: string): Promise<Buffer> {
  // The ROM's size probe: tsize only; the OACK tells the size, ERROR 8 ends it (a normal abort, wire.md).
  const probe = await tftpOpen(ip);
  let tsize: number | undefined;
  try {
    await tftpSession(probe, server, encodeRequest('rrq', file, 'octet', { tsize: '0' }), (pkt, reply, finish) => {
      if (!pkt.ok) return;
      const p = pkt.packet;
      if (p.op === 'oack') {
        tsize = p.options.tsize !== undefined ? Number(p.options.tsize) : undefined;
        reply(encodeError(ERR.OPTION_REFUSED, 'User aborted the transfer'));
        finish();
      } else if (p.op === 'error') finish(new StepError(`TFTP probe: ERROR ${p.code} ${p.message}`));
      else if (p.op === 'data') {
        reply(encodeError(ERR.OPTION_REFUSED, 'User aborted the transfer')); // a server without options: no size, go on
        finish();
      }
    });
  } finally {
    probe.close();
  }
  const s = await tftpOpen(ip);
  const chunks: Buffer[] = [];
  let blksize = 512;
  let expect = 1;
  try {
    await tftpSession(s, server, encodeRequest('rrq', file, 'octet', { blksize: String(PXE_BLKSIZE) }), (pkt, reply, finish) => {
      if (!pkt.ok) return;
      const p = pkt.packet;
      if (p.op === 'oack') {
        if (expect !== 1) return;
        blksize = Number(p.options.blksize ?? 512);
        reply(encodeAck(0));
      } else if (p.op === 'data') {
        if (p.block === (expect & 0xffff)) {
          chunks.push(Buffer.from(p.data));
          expect++;
          if (p.data.length < blksize) {
            reply(encodeAck(p.block)); // the last ACK; finish() stops its retransmission
            finish();
            return;
          }
          reply(encodeAck(p.block));
        } else if (p.block === ((expect - 1) & 0xffff)) {
          reply(encodeAck(p.block)); // a duplicate: our ACK was lost
        }
      } else if (p.op === 'error') finish(new StepError(`TFTP: ERROR ${p.code} ${p.message}`));
    });
  } finally {
    s.close();
  }
  const body = Buffer.concat(chunks);
  if (tsize !== undefined && body.length !== tsize) throw new StepError(`TFTP: ${body.length} bytes, tsize said ${tsize}`);
  return body;
}

// ---- HTTP: iPXE's three requests on one keep-alive connection from the machine's address ----

function httpGet(agent: http.Agent, ip: string, url: URL, sink: 'text' | 'count'): Promise<{ text: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: url.hostname, port: url.port || 80, path: `${url.pathname}${url.search}`, agent, localAddress: ip, headers: { 'user-agent': 'iPXE/1.0.0+git-20190125' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new StepError(`GET ${url.pathname}: HTTP ${res.statusCode}`));
        return;
      }
      const parts: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (sink === 'text') parts.push(c);
      });
      res.on('end', () => {
        const declared = res.headers['content-length'];
        if (declared !== undefined && Number(declared) !== bytes) reject(new StepError(`GET ${url.pathname}: ${bytes} of ${declared} bytes`));
        else resolve({ text: sink === 'text' ? Buffer.concat(parts).toString('utf8') : '', bytes });
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(new StepError(`GET ${url.pathname}: ${err.message}`)));
  });
}

/** iPXE's settings as the scripts use them; anything else expands to nothing, as in iPXE. */
function expand(line: string, m: Machine): string {
  return line.replace(/\$\{([^}]+)\}/g, (_, name: string) => (name === 'mac:hexhyp' ? m.mac.replaceAll(':', '-') : name === 'mac' ? m.mac : name === 'uuid' ? m.uuid : ''));
}

function scriptLine(text: string, command: string, what: string): string {
  if (!text.startsWith('#!ipxe')) throw new StepError(`${what} is not an iPXE script: ${JSON.stringify(text.slice(0, 60))}`);
  const line = text.split('\n').find((l) => l.trim().startsWith(`${command} `));
  if (!line) throw new StepError(`${what} has no "${command}" line`);
  return line
    .trim()
    .slice(command.length + 1)
    .trim();
}

// ---- one machine ----

async function boot(m: Machine): Promise<void> {
  const mark = (step: Step) => {
    m.marks[step] = performance.now() - m.t0!;
  };
  m.t0 = performance.now();
  m.step = 'dhcp';
  const ack = await dora(m, 'bios');
  m.ip = ack.yiaddr;
  const server = ack.siaddr !== '0.0.0.0' ? ack.siaddr : ack.options.serverId()!;
  const file = bootFileOf(ack);
  mark('dhcp');
  m.step = 'tftp';
  const nbp = await tftpGet(m.ip, server, file);
  if (BOOT_FILE_SHA && createHash('sha256').update(nbp).digest('hex') !== BOOT_FILE_SHA) throw new StepError(`TFTP ${file}: ${nbp.length} bytes, not the served file`);
  mark('tftp');
  m.step = 'ipxe-dhcp';
  const ipxeAck = await dora(m, 'ipxe-bios');
  // iPXE sends option 61 where the ROM sent none: a server may key the lease anew; HTTP then goes from the new address.
  m.ip = ipxeAck.yiaddr;
  const scriptUrl = new URL(bootFileOf(ipxeAck));
  if (scriptUrl.protocol !== 'http:') throw new StepError(`iPXE's boot file is not an http URL: ${scriptUrl.href}`);
  mark('ipxe-dhcp');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    m.step = 'boot.ipxe';
    const bootScript = await httpGet(agent, m.ip, scriptUrl, 'text');
    const chain = new URL(expand(scriptLine(bootScript.text, 'chain', scriptUrl.pathname), m), scriptUrl);
    mark('boot.ipxe');
    m.step = 'ipxe';
    const machineScript = await httpGet(agent, m.ip, chain, 'text');
    const kernel = new URL(expand(scriptLine(machineScript.text, 'kernel', chain.pathname), m).split(/\s+/)[0]!, chain);
    mark('ipxe');
    m.step = 'kernel';
    const got = await httpGet(agent, m.ip, kernel, 'count');
    if (KERNEL_BYTES !== undefined && got.bytes !== KERNEL_BYTES) throw new StepError(`kernel: ${got.bytes} bytes, expected ${KERNEL_BYTES}`);
    mark('kernel');
  } finally {
    agent.destroy();
  }
}

const machines: Machine[] = Array.from({ length: N }, (_, n) => ({ n, mac: macOf(n), ...uuidOf(n), step: 'dhcp' as Step, marks: {} }));
const failures: { mac: Mac; step: Step; error: string }[] = [];
const started = performance.now();
let settled = 0;
const all = new Promise<void>((resolve) => {
  for (const m of machines) {
    setTimeout(() => {
      boot(m).then(
        () => {
          if (++settled === N) resolve();
        },
        (err: unknown) => {
          failures.push({ mac: m.mac, step: m.step, error: err instanceof Error ? err.message : String(err) });
          if (++settled === N) resolve();
        },
      );
    }, Math.random() * SPREAD_MS);
  }
});
const deadline = new Promise<'deadline'>((r) => setTimeout(() => r('deadline'), DEADLINE_MS).unref());
const outcome = await Promise.race([all.then(() => 'done' as const), deadline]);
const wallS = (performance.now() - started) / 1000;

const done = machines.filter((m) => m.marks.kernel !== undefined);
if (outcome === 'deadline') {
  const failed = new Set(failures.map((f) => f.mac));
  for (const m of machines) if (m.marks.kernel === undefined && !failed.has(m.mac)) failures.push({ mac: m.mac, step: m.step, error: `not done at the ${DEADLINE_MS / 1000} s deadline` });
}
const q = (xs: number[], f: number) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(f * s.length))]!);
};
const totals = done.map((m) => m.marks.kernel!);
// Each step's own duration (from the end of the one before), medians and p99 in ms.
const perStep: Record<string, { p50: number | null; p99: number | null }> = {};
for (const [i, step] of STEPS.entries()) {
  const d = done.map((m) => m.marks[step]! - (i ? m.marks[STEPS[i - 1]!]! : 0));
  perStep[step] = { p50: q(d, 0.5), p99: q(d, 0.99) };
}
const byStep: Record<string, number> = {};
for (const f of failures) byStep[f.step] = (byStep[f.step] ?? 0) + 1;
process.stdout.write(
  `${JSON.stringify({
    clients: N,
    completed: done.length,
    failed: failures.length,
    failedAt: byStep,
    naks,
    firstFailures: failures.slice(0, 5),
    wallS: Number(wallS.toFixed(2)),
    p50: q(totals, 0.5),
    p99: q(totals, 0.99),
    max: q(totals, 1),
    perStep,
  })}\n`,
);
dhcpSocket.close();
process.exit(0);
