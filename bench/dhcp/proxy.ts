/**
 * ProxyDHCP DISCOVER→OFFER: the appliance against dnsmasq in proxy mode (dhcp-range=…,proxy
 * plus pxe-service), same namespaces, same generator (discover-gen.ts: BIOS PXE DISCOVERs
 * broadcast from 0.0.0.0:68, a new MAC each), server pinned to core 0 and generator to
 * core 1, both at nice -10 so other work on a shared box disturbs the two servers alike. Three
 * measurements per server and round: offers/s with 64 outstanding; p50/p99 latency paced
 * at 500/s; and the server's CPU time (user+sys from /proc) per offer during the paced run,
 * the figure least moved by other load. Bounded: a few seconds each.
 *   sudo node --import tsx bench/dhcp/proxy.ts [--seconds 5] [--rounds 2] [--rate 500] [--logs on|off] [--macs 2000] [--case proxy|bootserver] [--profile DIR] [--floor]
 * Prints one JSON line per server and round, then the ratios (ours / dnsmasq). --floor adds a
 * third server, floor-responder.ts (Node, the same socket, the request's bytes sent back): what
 * any Node server pays per packet before doing anything, against dnsmasq's whole answer.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { Topology, isRoot, type Namespace } from '../../test/helpers/netns.ts';
import { cpuMs, cpuSplitMs, median, ratio as r, stopChild as stop, threadCpuDelta, threadCpuMs, waitListening, proxyApplianceFlags } from './lib.ts';
import { PROJECT_ROOT } from '../../test/helpers/appliance.ts';
import { applianceArgs } from '../appliance.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    rate: { type: 'string', default: '500' },
    window: { type: 'string', default: '64' },
    /** on: both log every exchange (ours JSON at info, dnsmasq its DHCP lines); off: ours at warn, dnsmasq quiet-dhcp. */
    logs: { type: 'string', default: 'on' },
    /**
     * Distinct machines the DISCOVERs come from. 2000 is a large site rebooting at once and
     * stays under the boot timeline's 4,096-machine bound; 0 makes every DISCOVER a new
     * machine, which also measures the timeline's eviction on every packet.
     */
    macs: { type: 'string', default: '2000' },
    /**
     * proxy: BIOS DISCOVERs broadcast to 67. bootserver: UEFI (arch 7) REQUESTs to the PXE boot
     * server on 4011, as OVMF sends them once the site's DHCP gave it an address (from
     * 10.41.0.2:4011, ciaddr set), against dnsmasq's pxe-service answers on 4011.
     */
    case: { type: 'string', default: 'proxy' },
    /** A directory: our server runs under `node --cpu-prof` and writes its profile there on exit. */
    profile: { type: 'string' },
    floor: { type: 'boolean', default: false },
  },
});
if (!isRoot) {
  process.stderr.write('bench/dhcp/proxy: needs root (network namespaces)\n');
  process.exit(2);
}
const seconds = Math.min(Number(values.seconds), 20);
const rounds = Math.min(Number(values.rounds), 5);
const GEN = fileURLToPath(new URL('./discover-gen.ts', import.meta.url));
const FLOOR = fileURLToPath(new URL('./floor-responder.ts', import.meta.url));
const SERVER = '10.41.0.1';
const CLIENT = '10.41.0.2';
const bootServer = values.case === 'bootserver';
if (!['proxy', 'bootserver'].includes(values.case!)) {
  process.stderr.write(`bench/dhcp/proxy: --case proxy or bootserver, not ${values.case}\n`);
  process.exit(2);
}
const PORT = bootServer ? 4011 : 67;

interface GenResult {
  sent: number;
  answered: number;
  lost: number;
  perSecond: number;
  p50ms: number | null;
  p99ms: number | null;
}

async function generate(cli: Namespace, script: Record<string, unknown>): Promise<GenResult> {
  const out = await cli.exec('nice', [
    '-n',
    '-10',
    'taskset',
    '-c',
    '1',
    process.execPath,
    '--import',
    'tsx',
    GEN,
    JSON.stringify({ iface: 'eth0', server: SERVER, kind: bootServer ? 'uefi7' : 'bios', macs: Number(values.macs), ...(bootServer ? { bootServerFrom: CLIENT } : {}), ...script }),
  ]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as GenResult;
}

const topo = new Topology();
const scratch = await mkdtemp(path.join(tmpdir(), 'bca-bench-proxy-'));
type ServerName = 'ours' | 'floor' | 'dnsmasq';
const names: ServerName[] = values.floor ? ['ours', 'floor', 'dnsmasq'] : ['ours', 'dnsmasq'];
const results: Record<ServerName, { perSecond: number[]; p50: number[]; p99: number[]; cpuUs: number[] }> = {
  ours: { perSecond: [], p50: [], p99: [], cpuUs: [] },
  floor: { perSecond: [], p50: [], p99: [], cpuUs: [] },
  dnsmasq: { perSecond: [], p50: [], p99: [], cpuUs: [] },
};
try {
  const sw = await topo.namespace('bsw');
  await topo.bridge(sw, 'br0');
  const srv = await topo.namespace('bsrv');
  await topo.veth(srv, 'eth0', sw, 'p-srv', `${SERVER}/24`);
  await topo.enslave(sw, 'p-srv', 'br0');
  const cli = await topo.namespace('bcli');
  // The boot server is asked from the address the site's DHCP handed out.
  await topo.veth(cli, 'eth0', sw, 'p-cli', ...(bootServer ? [`${CLIENT}/24`] : []));
  await topo.enslave(sw, 'p-cli', 'br0');

  const conf = path.join(scratch, 'dnsmasq.conf');
  await writeFile(
    conf,
    [
      'interface=eth0',
      'bind-interfaces',
      `dhcp-range=${SERVER.replace(/\.1$/, '.0')},proxy,255.255.255.0`,
      'pxe-service=x86PC,"Network boot",undionly',
      // UEFI (arch 7) is answered on 4011 with its loader, as ours answers it ipxe.efi.
      'pxe-service=X86-64_EFI,"Network boot",ipxe',
      'pxe-service=BC_EFI,"Network boot",ipxe',
      `log-facility=${path.join(scratch, 'dnsmasq.log')}`,
      'user=root',
      ...(values.logs === 'off' ? ['quiet-dhcp'] : []),
      '',
    ].join('\n'),
  );
  const dataDir = path.join(scratch, 'data');
  // ProxyDHCP answers only machines with a config, and hands out TFTP files only while TFTP serves on 69.
  await mkdir(path.join(dataDir, 'boot'), { recursive: true });
  await writeFile(path.join(dataDir, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));

  const servers: Record<ServerName, () => ChildProcess> = {
    // As users run it: JSON logs at info (one line per reply), to /dev/null.
    ours: () =>
      srv.spawn(
        'nice',
        [
          '-n',
          '-10',
          'taskset',
          '-c',
          '0',
          process.execPath,
          ...(values.profile ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values.profile)] : []),
          ...applianceArgs(proxyApplianceFlags({ iface: 'eth0', address: `${SERVER}:8080`, tftp: `${SERVER}:69`, dataPath: dataDir, logs: values.logs })),
        ],
        { cwd: PROJECT_ROOT, stdio: 'ignore' },
      ),
    floor: () => srv.spawn('nice', ['-n', '-10', 'taskset', '-c', '0', process.execPath, '--import', 'tsx', FLOOR, 'eth0', String(PORT)], { cwd: PROJECT_ROOT, stdio: 'ignore' }),
    dnsmasq: () => srv.spawn('nice', ['-n', '-10', 'taskset', '-c', '0', 'dnsmasq', '-k', `--conf-file=${conf}`, '--port=0', `--pid-file=${path.join(scratch, 'dnsmasq.pid')}`], { stdio: 'ignore' }),
  };

  for (let round = 1; round <= rounds; round++) {
    for (const name of names) {
      const child = servers[name]();
      try {
        await waitListening(srv, child, name, PORT);
        // Warm up (JIT, ARP-free path, caches) before measuring.
        await generate(cli, { mode: 'rate', rate: 500, seconds: 2 });
        const closed = await generate(cli, { mode: 'closed', window: Number(values.window), seconds });
        // nice, taskset and `ip netns exec` all exec in place: the child's pid is the server's.
        const before = cpuMs(child.pid!);
        const splitBefore = cpuSplitMs(child.pid!);
        const threadsBefore = threadCpuMs(child.pid!);
        const paced = await generate(cli, { mode: 'rate', rate: Number(values.rate), seconds });
        const cpuUsPerOffer = paced.answered ? Math.round(((cpuMs(child.pid!) - before) * 1000) / paced.answered) : NaN;
        // Where that CPU went, by thread (main = JavaScript and the event loop; libuv workers; V8's GC helpers).
        const threadsMs = threadCpuDelta(threadsBefore, threadCpuMs(child.pid!));
        const splitAfter = cpuSplitMs(child.pid!);
        const perOffer = (ms: number) => (paced.answered ? Math.round((ms * 1000) / paced.answered) : NaN);
        const cpuSplitUs = { user: perOffer(splitAfter.user - splitBefore.user), sys: perOffer(splitAfter.sys - splitBefore.sys) };
        results[name].cpuUs.push(cpuUsPerOffer);
        results[name].perSecond.push(closed.perSecond);
        if (paced.p50ms !== null) results[name].p50.push(paced.p50ms);
        if (paced.p99ms !== null) results[name].p99.push(paced.p99ms);
        process.stdout.write(`${JSON.stringify({ server: name, round, closed, paced, cpuUsPerOffer, cpuSplitUs, threadsMs })}\n`);
      } finally {
        await stop(child);
      }
    }
  }
} finally {
  await topo.destroy();
  await rm(scratch, { recursive: true, force: true });
}

const summarize = (x: (typeof results)['ours']) => ({ perSecond: median(x.perSecond), p50: median(x.p50), p99: median(x.p99), cpuUsPerOffer: median(x.cpuUs) });
const ours = summarize(results.ours);
const peer = summarize(results.dnsmasq);
const floor = values.floor ? summarize(results.floor) : undefined;
process.stdout.write(
  `${JSON.stringify({
    summary: `${bootServer ? 'PXE boot server REQUEST→ACK on 4011' : 'ProxyDHCP DISCOVER→OFFER'}, medians over rounds, logs ${values.logs}, ${values.macs === '0' ? 'a new MAC per request' : `${values.macs} machines`}`,
    ours,
    dnsmasq: peer,
    ratio: { offersPerSecond: r(ours.perSecond, peer.perSecond), p50Latency: r(ours.p50, peer.p50), p99Latency: r(ours.p99, peer.p99), cpuPerOffer: r(ours.cpuUsPerOffer, peer.cpuUsPerOffer) },
    ...(floor ? { floor, floorRatio: { offersPerSecond: r(floor.perSecond, peer.perSecond), cpuPerOffer: r(floor.cpuUsPerOffer, peer.cpuUsPerOffer) } } : {}),
  })}\n`,
);
process.stdout.write(
  `${bootServer ? '4011 ACKs/s' : 'ProxyDHCP offers/s'}: ours ${ours.perSecond} vs dnsmasq ${peer.perSecond} → ${r(ours.perSecond, peer.perSecond)}x; ` +
    `latency at ${values.rate}/s p50 ${ours.p50.toFixed(3)} vs ${peer.p50.toFixed(3)} ms (${r(ours.p50, peer.p50)}x), p99 ${ours.p99.toFixed(3)} vs ${peer.p99.toFixed(3)} ms (${r(ours.p99, peer.p99)}x); ` +
    `CPU per offer ${ours.cpuUsPerOffer} vs ${peer.cpuUsPerOffer} µs (${r(ours.cpuUsPerOffer, peer.cpuUsPerOffer)}x)\n`,
);
if (floor) {
  process.stdout.write(
    `Node floor (floor-responder.ts, no work per packet): ${floor.perSecond}/s (${r(floor.perSecond, peer.perSecond)}x dnsmasq), ` +
      `CPU per packet at ${values.rate}/s ${floor.cpuUsPerOffer} µs (${r(floor.cpuUsPerOffer, peer.cpuUsPerOffer)}x dnsmasq's whole offer)\n`,
  );
}
const resultsDir = path.join(PROJECT_ROOT, 'bench', 'results');
await mkdir(resultsDir, { recursive: true });
await writeFile(
  path.join(resultsDir, `dhcp-${bootServer ? 'bootserver' : 'proxy'}-${new Date().toISOString().replaceAll(':', '-')}.json`),
  `${JSON.stringify({ ours, dnsmasq: peer, ...(floor ? { floor } : {}), results, args: values }, null, 2)}\n`,
);
