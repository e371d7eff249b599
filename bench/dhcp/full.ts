/**
 * Full DHCP DORA/s with leases durable before the ACK: the appliance against dnsmasq in
 * full mode with its lease file (no-ping, per shared/notes/peers.md), same namespaces,
 * same generator (full-load.ts: DISCOVER/REQUEST from 0.0.0.0:68, one chaddr per
 * transaction), server pinned to core 0 and generator to core 1. Bounded by count and time.
 *   sudo node --import tsx bench/dhcp/full.ts [--seconds 6] [--count 60000] [--concurrency 64] [--etcd]
 * Prints one JSON line per server and round, then the ratio (ours / dnsmasq). With --etcd a
 * third server joins each round: the appliance with its leases in a real 3-member etcd
 * cluster (--store etcd://…: a compare-and-swap before each OFFER, the binding committed
 * before each ACK), which is what sharing a pool between two appliances costs.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Topology, isRoot, type Namespace } from '../../test/helpers/netns.ts';
import { cpuMs, ratio, stopChild, waitListening, tsxOnCore, fullApplianceOnCore0, fullDnsmasqConf } from './lib.ts';
import { PROJECT_ROOT } from '../../test/helpers/appliance.ts';
import { canRunEtcd, startEtcdCluster, type EtcdCluster } from '../../test/helpers/etcd-cluster.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    count: { type: 'string', default: '60000' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '2' },
    etcd: { type: 'boolean', default: false },
  },
});
if (!isRoot) {
  process.stderr.write('bench/dhcp/full: needs root (network namespaces)\n');
  process.exit(2);
}

const GEN = fileURLToPath(new URL('./full-load.ts', import.meta.url));
const SERVER = '10.40.0.1';
const RANGE = ['10.40.1.0', '10.40.254.254'] as const;

interface LoadResult {
  completed: number;
  lost: number;
  naks: number;
  started: number;
  seconds: number;
  rate: number;
  p50: number | null;
  p99: number | null;
  /** Server user+sys CPU per completed DORA (from /proc), the figure least moved by other load. */
  cpuUsPerDora?: number | null;
}

async function load(cli: Namespace, macBase: number): Promise<LoadResult> {
  const out = await cli.exec(
    'taskset',
    tsxOnCore(1, GEN, ['--iface', 'eth0', '--count', values.count!, '--concurrency', values.concurrency!, '--seconds', values.seconds!, '--mac-base', String(macBase)]),
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult;
}

async function runDnsmasq(srv: Namespace, cli: Namespace, dir: string, round: number): Promise<LoadResult> {
  // Full mode, lease file on (it rewrites and fsyncs it per lease), no ICMP probe.
  await mkdir(dir, { recursive: true });
  const leases = path.join(dir, 'dnsmasq.leases');
  const conf = path.join(dir, 'dnsmasq.conf');
  await writeFile(conf, fullDnsmasqConf({ range: RANGE, dir, leaseMax: 200_000, quiet: true }));
  const dnsmasq = srv.spawn('taskset', ['-c', '0', 'dnsmasq', '-k', `--conf-file=${conf}`]);
  await waitListening(srv, dnsmasq, 'dnsmasq');
  const cpu0 = cpuMs(dnsmasq.pid!);
  const r = await load(cli, round * 0x1000000);
  r.cpuUsPerDora = r.completed ? Math.round(((cpuMs(dnsmasq.pid!) - cpu0) * 1000) / r.completed) : null;
  await stopChild(dnsmasq);
  const inFile = (await readFile(leases, 'utf8')).split('\n').filter(Boolean).length;
  process.stdout.write(`${JSON.stringify({ round, server: 'dnsmasq', ...r, leasesInFile: inFile })}\n`);
  return r;
}

/** With --etcd: the cluster and the --store URL of a round (a prefix of its own, so each starts empty). */
interface EtcdBench {
  cluster: EtcdCluster;
  /** The --store prefix of a round, without the leading `/`. */
  prefix(round: number): string;
}

async function runOurs(srv: Namespace, cli: Namespace, dir: string, round: number, etcd?: EtcdBench): Promise<LoadResult> {
  // Same range, lease file under a fresh data dir; log at warn like dnsmasq's quiet-dhcp.
  const data = path.join(dir, 'data');
  const ours = srv.spawn(
    'taskset',
    fullApplianceOnCore0({ server: SERVER, range: RANGE.join(','), dataPath: data, logLevel: 'warn', extra: etcd ? ['--store', etcd.cluster.storeUrl(etcd.prefix(round)), '--name', 'bench'] : [] }),
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  ours.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  ours.stdout!.resume();
  await waitListening(srv, ours, 'appliance').catch((e: Error) => {
    throw new Error(`${e.message}: ${err.slice(-1000)}`);
  });
  const cpu0 = cpuMs(ours.pid!);
  const r = await load(cli, round * 0x1000000 + (etcd ? 0x400000 : 0x800000));
  r.cpuUsPerDora = r.completed ? Math.round(((cpuMs(ours.pid!) - cpu0) * 1000) / r.completed) : null;
  // Before the clean stop: what a crash right now would leave (snapshot + journal, or etcd).
  let durable: number;
  if (etcd) {
    const out = await etcd.cluster.etcdctl(['get', '--prefix', `/${etcd.prefix(round)}/leases/`, '--print-value-only']);
    durable = out.split('\n').filter((l) => l.includes('"state":"bound"')).length;
  } else {
    const leaseFile = path.join(data, 'state', 'leases.json');
    const onDisk = (await readFile(leaseFile, 'utf8')) + (await readFile(`${leaseFile}.journal`, 'utf8'));
    durable = new Set([...onDisk.matchAll(/"ip":"([\d.]+)","mac":"[^"]+"[^}]*"state":"bound"/g)].map((m) => m[1])).size;
  }
  await stopChild(ours);
  process.stdout.write(`${JSON.stringify({ round, server: etcd ? 'bootcfg-appliance+etcd' : 'bootcfg-appliance', ...r, [etcd ? 'leasesInEtcd' : 'leasesInFile']: durable })}\n`);
  return r;
}

const topo = new Topology();
const dir = await mkdtemp(path.join(tmpdir(), 'bca-bench-full-'));
let cluster: EtcdCluster | undefined;
try {
  const srv = await topo.namespace('bsrv');
  await topo.bridge(srv, 'br0', `${SERVER}/16`);
  const cli = await topo.namespace('bcli');
  await topo.veth(cli, 'eth0', srv, 'c0');
  await topo.enslave(srv, 'c0', 'br0');
  let etcd: EtcdBench | undefined;
  if (values.etcd) {
    if (!canRunEtcd) throw new Error('--etcd: needs /usr/bin/etcd (Debian etcd-server)');
    const c = await startEtcdCluster({ tag: 'bca-bench', members: 3 });
    cluster = c;
    await c.attach(srv.name);
    etcd = { cluster: c, prefix: (round) => `bench-r${round}` };
  }

  const results: { dnsmasq: LoadResult[]; ours: LoadResult[]; oursEtcd: LoadResult[] } = { dnsmasq: [], ours: [], oursEtcd: [] };
  // Interleaved rounds: this machine is shared, so load drifts; each pair is compared in its own moment.
  for (let round = 0; round < Number(values.rounds); round++) {
    results.dnsmasq.push(await runDnsmasq(srv, cli, path.join(dir, `r${round}`), round));
    results.ours.push(await runOurs(srv, cli, path.join(dir, `r${round}`), round));
    if (etcd) results.oursEtcd.push(await runOurs(srv, cli, path.join(dir, `r${round}-etcd`), round, etcd));
  }
  const sum = (rs: LoadResult[]) => rs.reduce((a, r) => a + r.completed, 0) / rs.reduce((a, r) => a + r.seconds, 0);
  const worstP99 = (rs: LoadResult[]) => Math.max(...rs.map((r) => r.p99 ?? Number.NaN));
  const summary = {
    ratio: ratio(sum(results.ours), Math.max(1, sum(results.dnsmasq))),
    perRound: results.ours.map((r, i) => ratio(r.rate, Math.max(1, results.dnsmasq[i]!.rate))),
    oursRate: Math.round(sum(results.ours)),
    dnsmasqRate: Math.round(sum(results.dnsmasq)),
    ...(etcd
      ? {
          etcdRate: Math.round(sum(results.oursEtcd)),
          etcdVsFile: ratio(sum(results.oursEtcd), Math.max(1, sum(results.ours))),
          etcdVsDnsmasq: ratio(sum(results.oursEtcd), Math.max(1, sum(results.dnsmasq))),
          p99Ms: { dnsmasq: worstP99(results.dnsmasq), file: worstP99(results.ours), etcd: worstP99(results.oursEtcd) },
        }
      : {}),
    note: 'full DORA/s, leases durable before ACK, ours / dnsmasq with lease file',
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  const out = path.join(PROJECT_ROOT, 'bench', 'results', `dhcp-full-${new Date().toISOString().replaceAll(':', '-')}.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ summary, results, args: values }, null, 2)}\n`);
} finally {
  await cluster?.stop();
  await topo.destroy();
  await rm(dir, { recursive: true, force: true });
}
