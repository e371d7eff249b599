/**
 * Resident memory of the appliance with a whole site known, and whether what it remembers
 * stays bounded under a storm, against dnsmasq holding the same leases. Full DHCP mode, logs
 * at info (as users run it), inside namespaces this script creates and removes:
 *
 *   1. `--machines` BIOS PXE clients (default 10,000) each do DISCOVER → OFFER → REQUEST → ACK
 *      (bench/dhcp/full-load.ts --pxe): that many leases, that many machines on the boot timeline;
 *   2. `--storms` times (default 2), `--storm` new MACs (default 30,000) ask again: the pool
 *      (machines + 256 addresses) runs dry, every one of them is a new machine on the timeline.
 *
 * After each step: VmRSS and VmHWM of the server process (/proc/<pid>/status) and what its
 * /metrics says the timeline and the pool hold. dnsmasq (dhcp-lease-max above the pool, its
 * lease file on) goes through the same steps. Bounded in count and time.
 *   sudo node --import tsx bench/memory/run.ts [--machines 10000] [--storm 30000] [--storms 2]
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { intToIpv4, ipv4ToInt } from '../../src/net/ipv4.ts';
import { Topology, isRoot, type Namespace } from '../../test/helpers/netns.ts';
import { PROJECT_ROOT } from '../../test/helpers/appliance.ts';
import { ratio, stopChild, waitListening, tsxOnCore, fullApplianceOnCore0, fullDnsmasqConf } from '../dhcp/lib.ts';

const { values } = parseArgs({
  options: {
    machines: { type: 'string', default: '10000' },
    storm: { type: 'string', default: '30000' },
    storms: { type: 'string', default: '2' },
  },
});
if (!isRoot) {
  process.stderr.write('bench/memory: needs root (network namespaces)\n');
  process.exit(2);
}
const machines = Math.min(Number(values.machines), 60_000);
const storm = Math.min(Number(values.storm), 200_000);
const storms = Math.min(Number(values.storms), 5);
const GEN = fileURLToPath(new URL('../dhcp/full-load.ts', import.meta.url));
const SERVER = '10.43.0.1';
const RANGE_START = '10.43.1.0';
const RANGE_END = intToIpv4(ipv4ToInt(RANGE_START) + machines + 255);

interface Memory {
  rssMiB: number;
  hwmMiB: number;
}

async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: +(kib('VmRSS') / 1024).toFixed(1), hwmMiB: +(kib('VmHWM') / 1024).toFixed(1) };
}

interface Load {
  completed: number;
  lost: number;
  started: number;
  seconds: number;
  rate: number;
}

async function load(cli: Namespace, count: number, macBase: number, timeoutMs: number, concurrency: number): Promise<Load> {
  const out = await cli.exec(
    'taskset',
    tsxOnCore(1, GEN, ['--iface', 'eth0', '--pxe', '--count', String(count), '--concurrency', String(concurrency), '--seconds', '120', '--timeout', String(timeoutMs), '--mac-base', String(macBase)]),
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as Load;
}

/** What our /metrics says is held: the timeline's entries, its evictions, the pool's leases. */
async function held(srv: Namespace): Promise<Record<string, number>> {
  const text = await srv.exec('curl', ['-s', '--max-time', '10', `http://${SERVER}:8080/metrics`]);
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^bootcfg_(timeline_entries|timeline_evictions_total|dhcp_leases)\{(?:kind|reason|state)="([a-z]+)"\} (\d+)/gm)) out[`${m[1]}.${m[2]}`] = Number(m[3]);
  return out;
}

interface Step {
  step: string;
  load?: Load;
  memory: Memory;
  held?: Record<string, number>;
}

async function steps(name: 'ours' | 'dnsmasq', child: ChildProcess, srv: Namespace, cli: Namespace, macBase: number): Promise<Step[]> {
  const out: Step[] = [];
  const note = (s: Step) => {
    out.push(s);
    process.stdout.write(`${JSON.stringify({ server: name, ...s })}\n`);
  };
  // dnsmasq says what it holds in its lease file (one line per lease).
  const metrics = async () =>
    name === 'ours'
      ? await held(srv)
      : {
          leases: (await readFile(path.join(dir, 'dnsmasq.leases'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
        };
  await new Promise((r) => setTimeout(r, 1000));
  note({ step: 'idle', memory: await memoryOf(child.pid!), held: await metrics() });
  const site = await load(cli, machines, macBase, 2000, 64);
  note({ step: `${machines} machines`, load: site, memory: await memoryOf(child.pid!), held: await metrics() });
  for (let k = 1; k <= storms; k++) {
    // The pool is dry after a few hundred: most of these time out, so wait less for each and keep more in flight.
    const r = await load(cli, storm, macBase + k * 0x100000, 150, 256);
    note({ step: `storm ${k}: ${storm} new MACs`, load: r, memory: await memoryOf(child.pid!), held: await metrics() });
  }
  return out;
}

const topo = new Topology();
const dir = await mkdtemp(path.join(tmpdir(), 'bca-bench-memory-'));
const results: Record<'ours' | 'dnsmasq', Step[]> = { ours: [], dnsmasq: [] };
try {
  const srv = await topo.namespace('msrv');
  await topo.bridge(srv, 'br0', `${SERVER}/16`);
  const cli = await topo.namespace('mcli');
  await topo.veth(cli, 'eth0', srv, 'c0');
  await topo.enslave(srv, 'c0', 'br0');

  const data = path.join(dir, 'data');
  await mkdir(path.join(data, 'boot'), { recursive: true });
  await writeFile(path.join(data, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));
  const ours = srv.spawn('taskset', fullApplianceOnCore0({ server: SERVER, range: `${RANGE_START},${RANGE_END}`, dataPath: data, logLevel: 'info' }), { cwd: PROJECT_ROOT, stdio: 'ignore' });
  try {
    await waitListening(srv, ours, 'appliance');
    results.ours = await steps('ours', ours, srv, cli, 0x10_0000);
  } finally {
    await stopChild(ours);
  }

  const conf = path.join(dir, 'dnsmasq.conf');
  await writeFile(conf, fullDnsmasqConf({ range: [RANGE_START, RANGE_END], dir, leaseMax: machines + storm * storms + 1000, quiet: false }));
  const dnsmasq = srv.spawn('taskset', ['-c', '0', 'dnsmasq', '-k', `--conf-file=${conf}`], { stdio: 'ignore' });
  try {
    await waitListening(srv, dnsmasq, 'dnsmasq');
    results.dnsmasq = await steps('dnsmasq', dnsmasq, srv, cli, 0x80_0000);
  } finally {
    await stopChild(dnsmasq);
  }
} finally {
  await topo.destroy();
  await rm(dir, { recursive: true, force: true });
}

const at = (name: 'ours' | 'dnsmasq', i: number) => results[name][i]?.memory.rssMiB ?? NaN;
const last = results.ours.length - 1;
const summary = {
  summary: `resident memory, full DHCP, ${machines} PXE machines with leases, then ${storms} storms of ${storm} new MACs`,
  oursRssMiB: results.ours.map((s) => ({ step: s.step, rss: s.memory.rssMiB })),
  dnsmasqRssMiB: results.dnsmasq.map((s) => ({ step: s.step, rss: s.memory.rssMiB })),
  ratioWithSite: ratio(at('ours', 1), at('dnsmasq', 1)),
  oursGrowthSiteToLastStormMiB: +(at('ours', last) - at('ours', 1)).toFixed(1),
  oursGrowthLastStormMiB: last >= 3 ? +(at('ours', last) - at('ours', last - 1)).toFixed(1) : null,
  oursHeld: results.ours.at(-1)?.held,
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
const out = path.join(PROJECT_ROOT, 'bench', 'results', `memory-${new Date().toISOString().replaceAll(':', '-')}.json`);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ summary, results, args: values }, null, 2)}\n`);
