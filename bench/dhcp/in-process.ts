/**
 * The DHCP hot path without sockets: the appliance's own parts (store, timeline, boot counter,
 * stall watch, metrics, the JSON logger on standard output) behind the real pipeline, fed
 * requests straight into its handler. Reports CPU µs per reply, in-process: the figure to
 * profile (`node --cpu-prof`) or count instructions of (valgrind --tool=callgrind), since it
 * leaves out the kernel, the network and the other core's load.
 *   node --import tsx bench/dhcp/in-process.ts [--case proxy|bootserver] [--count 20000] [--macs 2000] [--logs on|off] >/dev/null
 * Standard output carries the appliance's log lines (send it to /dev/null); the figures go to standard error.
 */
import { parseArgs } from 'node:util';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBootCounter, createParts, createStallWatch, createStoreService, machineLookup, bootStore } from '../../src/appliance.ts';
import { buildConfig, readServeOptions } from '../../src/cli.ts';
import { MessageType } from '../../src/dhcp/options.ts';
import { encodePacket } from '../../src/dhcp/packet.ts';
import { dhcpServiceFor } from '../../src/dhcp/service.ts';
import type { PacketHandler, PacketTransport, TransportOptions } from '../../src/dhcp/transport.ts';
import { createLogger } from '../../src/log.ts';
import type { Mac } from '../../src/net/mac.ts';
import { request } from '../../test/dhcp/fixtures.ts';
import { proxyApplianceFlags } from '../dhcp/lib.ts';

const { values } = parseArgs({
  options: {
    case: { type: 'string', default: 'proxy' },
    count: { type: 'string', default: '20000' },
    macs: { type: 'string', default: '2000' },
    logs: { type: 'string', default: 'on' },
  },
});
const count = Math.min(Number(values.count), 1_000_000);
const macs = Number(values.macs);
const bootserver = values.case === 'bootserver';

const scratch = await mkdtemp(path.join(tmpdir(), 'bca-bench-inproc-'));
const dataDir = path.join(scratch, 'data');
await mkdir(path.join(dataDir, 'boot'), { recursive: true });
await writeFile(path.join(dataDir, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));

const { raw } = readServeOptions(proxyApplianceFlags({ iface: 'lo', address: '127.0.0.1:8080', dataPath: dataDir, logs: values.logs }), {});
const config = buildConfig(raw);
const log = createLogger(config.log);
const parts = await createParts(config, log);
const services = [createStoreService(parts), createBootCounter(parts), createStallWatch(parts)];
for (const s of services) await s.start();

// One handler per port; sends go nowhere.
const handlers = new Map<number, PacketHandler>();
const openTransport = async (opts: TransportOptions): Promise<PacketTransport> => ({
  onPacket: (h) => handlers.set(opts.port, h),
  send: () => Promise.resolve(),
  close: () => Promise.resolve(),
});
if (config.dhcp.mode !== 'proxy') throw new Error('in-process bench: proxy mode expected');
const dhcp = dhcpServiceFor(
  { mode: 'proxy', segment: config.dhcp.segment },
  { boot: parts.boot, log, metrics: parts.metrics, timeline: parts.timeline, lookup: machineLookup(bootStore(parts)), openTransport },
);
await dhcp.start();
const port = bootserver ? 4011 : 67;
const handle = handlers.get(port)!;

const macOf = (i: number) => `02:b0:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` as Mac;
const CLIENT = '10.41.0.2';
// As the generators send them: a BIOS DISCOVER from 0.0.0.0:68, or OVMF's REQUEST from its own address:4011.
const packets = Array.from({ length: macs || count }, (_, i) =>
  encodePacket(
    bootserver ? request({ kind: 'uefi7', mac: macOf(i), xid: i + 1, type: MessageType.REQUEST, ciaddr: CLIENT }) : request({ kind: 'bios', mac: macOf(i), xid: i + 1, type: MessageType.DISCOVER }),
  ),
);
const from = bootserver ? { address: CLIENT, port: 4011 } : { address: '0.0.0.0', port: 68 };

async function run(n: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    await handle(packets[i % packets.length]!, from);
    // Let the logger's writes complete now and then, as the event loop would between packets.
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

await run(Math.min(count, 5000)); // warm up: JIT, the timeline filled
const perReply = await run(count);
const mem = process.memoryUsage();
process.stderr.write(
  `${JSON.stringify({ case: values.case, count, macs, logs: values.logs, cpuUsPerReply: +perReply.toFixed(1), heapMiB: +(mem.heapUsed / 2 ** 20).toFixed(1), rssMiB: +(mem.rss / 2 ** 20).toFixed(1) })}\n`,
);
await dhcp.stop();
for (const s of services.reverse()) await s.stop();
await rm(scratch, { recursive: true, force: true });
log.flush();
