/**
 * Full DHCP with etcd-shared leases, with real parts only: a 3-member etcd cluster
 * (Debian's etcd-server, each member in its own namespace), two appliances with the same
 * --dhcp-range on one bridge (each in its own namespace, also attached to the cluster's
 * bridge), and a storm of busybox udhcpc clients (one namespace each) on the same bridge.
 * One appliance is kill -9'ed mid-storm and started again. Every client must end with one
 * lease, no address may be held twice, and every ACKed lease must be in etcd, bound to its
 * client, and loaded by the restarted appliance.
 */
import test from 'ava';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canRunEtcd, startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { onLines } from '../helpers/lines.ts';
import { waitFor, type Namespace } from '../helpers/netns.ts';

const maybe = canRunEtcd ? test.serial : test.skip;

const LAN = '10.78.0';
const RANGE = `${LAN}.100,${LAN}.199`;
const SUBNET_KEY = `${LAN}.0-24`;
const PREFIX = 'bca-lease';
const CLIENTS = 40;

/** Prints one line per udhcpc event; configures nothing (the namespace needs no address). */
const UDHCPC_SCRIPT = `#!/bin/sh
echo "EVENT $1 ip=$ip serverid=$serverid"
exit 0
`;

interface Client {
  ns: Namespace;
  mac: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

interface Lab {
  cluster: EtcdCluster;
  sw: Namespace;
  apps: { ns: Namespace; address: string; dataDir: string; name: string }[];
  dir: string;
}

async function createLab(t: { teardown(fn: () => Promise<void> | void): void }): Promise<Lab> {
  const cluster = await startEtcdCluster({ tag: PREFIX });
  t.teardown(() => cluster.stop());
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-lease-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { topo } = cluster;
  const sw = await topo.namespace('sw');
  await topo.bridge(sw, 'br0');
  const apps: Lab['apps'] = [];
  for (const [i, name] of ['alpha', 'beta'].entries()) {
    const ns = await topo.namespace(name.slice(0, 2));
    const address = `${LAN}.${i + 1}`;
    await topo.veth(ns, 'eth0', sw, `p-${name.slice(0, 2)}`, `${address}/24`);
    await topo.enslave(sw, `p-${name.slice(0, 2)}`, 'br0');
    await cluster.attach(ns.name);
    const dataDir = path.join(dir, name);
    apps.push({ ns, address, dataDir, name });
  }
  return { cluster, sw, apps, dir };
}

function startOne(lab: Lab, i: number): Promise<RunningAppliance> {
  const a = lab.apps[i]!;
  return startAppliance(
    [
      '--iface',
      'eth0',
      '--address',
      `${a.address}:8080`,
      '--data-path',
      a.dataDir,
      '--firmware-path',
      path.join(PROJECT_ROOT, 'firmware'),
      '--tftp-address',
      'off',
      '--dhcp',
      'full',
      '--dhcp-range',
      RANGE,
      '--store',
      lab.cluster.storeUrl(PREFIX),
      '--name',
      a.name,
    ],
    { ns: a.ns, readyTimeoutMs: 30_000 },
  );
}

async function addClient(lab: Lab, k: number, script: string): Promise<Client> {
  const { topo } = lab.cluster;
  const ns = await topo.namespace(`c${k}`);
  await topo.veth(ns, 'eth0', lab.sw, `p-c${k}`);
  await topo.enslave(lab.sw, `p-c${k}`, 'br0');
  const mac = (await ns.exec('cat', ['/sys/class/net/eth0/address'])).trim();
  // -q: quit once bound. No -n: a client whose REQUEST went to the appliance just killed goes back to
  // DISCOVER (with -n udhcpc would give up there, as it would beside any dead server); the test bounds the wait.
  const child = ns.spawn('busybox', ['udhcpc', '-f', '-q', '-i', 'eth0', '-s', script, '-t', '5', '-T', '1', '-A', '1']);
  const lines: string[] = [];
  const feed = onLines((line) => lines.push(line));
  child.stdout!.setEncoding('utf8').on('data', feed);
  child.stderr!.setEncoding('utf8').on('data', feed);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { ns, mac, child, lines, exited };
}

function boundOf(c: Client): { ip: string; serverid: string } | undefined {
  const line = c.lines.find((l) => l.startsWith('EVENT bound '));
  if (!line) return undefined;
  const f = Object.fromEntries(
    line
      .split(' ')
      .slice(2)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  return { ip: f.ip!, serverid: f.serverid! };
}

/** The lease records of the segment as etcd holds them, by address. */
async function leasesInEtcd(cluster: EtcdCluster): Promise<Map<string, { mac?: string; state: string; by?: string }>> {
  const out = await cluster.etcdctl(['get', '--prefix', `/${PREFIX}/leases/${SUBNET_KEY}/`, '--print-value-only']);
  const map = new Map<string, { mac?: string; state: string; by?: string }>();
  for (const line of out.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    const r = JSON.parse(line) as { ip: string; mac?: string; state: string; by?: string };
    map.set(r.ip, r);
  }
  return map;
}

maybe('shared leases (needs root, etcd-server): a udhcpc storm against two appliances, one kill -9ed mid-storm: one lease each, none twice, all in etcd', async (t) => {
  t.timeout(300_000);
  const lab = await createLab(t);
  const script = path.join(lab.dir, 'udhcpc.sh');
  await writeFile(script, UDHCPC_SCRIPT);
  await chmod(script, 0o755);

  let alpha = await startOne(lab, 0);
  t.teardown(() => alpha.stop());
  const beta = await startOne(lab, 1);
  t.teardown(() => beta.stop());

  const clients: Client[] = [];
  t.teardown(async () => {
    for (const c of clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  // Clients come up one after another while the storm runs; alpha dies once it has ACKed a few.
  const acksOf = (app: RunningAppliance) => app.lines.filter((l) => l.msg === 'DHCP ACK').length;
  let killedAfter: number | undefined;
  for (let k = 0; k < CLIENTS; k++) {
    clients.push(await addClient(lab, k, script));
    if (killedAfter === undefined && acksOf(alpha) >= 5) {
      alpha.child.kill('SIGKILL'); // by PID: ip netns exec execs node in place
      killedAfter = acksOf(alpha);
    }
  }
  if (killedAfter === undefined) {
    await waitFor('alpha ACKs a few clients', () => acksOf(alpha) >= 5, 60_000, 50);
    alpha.child.kill('SIGKILL');
    killedAfter = acksOf(alpha);
  }
  t.log(`alpha killed after ${killedAfter} ACKs; ${clients.length} clients started`);

  // Bounded: a client still without a lease after this is killed and reported below.
  const all = Promise.all(clients.map((c) => c.exited));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise((r) => (timer = setTimeout(r, 120_000)))]);
  clearTimeout(timer);
  for (const c of clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  const codes = await all;
  const bound = clients.map((c) => ({ mac: c.mac, lease: boundOf(c) }));
  const without = bound.filter((b) => !b.lease);
  t.deepEqual(
    without.map((b) => b.mac),
    [],
    `clients without a lease (exit codes ${codes.join(',')}): ${without.map((b) => clients.find((c) => c.mac === b.mac)!.lines.join(' | ')).join('\n')}`,
  );
  const byIp = new Map<string, string[]>();
  for (const b of bound) if (b.lease) byIp.set(b.lease.ip, [...(byIp.get(b.lease.ip) ?? []), b.mac]);
  const twice = [...byIp].filter(([, macs]) => macs.length > 1);
  t.deepEqual(twice, [], 'no address held by two clients');
  const servers = new Set(bound.map((b) => b.lease?.serverid));
  const conflicts = [alpha, beta].map((app) => app.lines.filter((l) => l.msg === 'lease changed by another appliance first: nothing sent for ours').length);
  t.log(`leases from: ${[...servers].join(', ')}; ACKs by beta: ${acksOf(beta)}; compare-and-swap lost by alpha/beta: ${conflicts.join('/')}`);
  t.true(servers.has(lab.apps[1]!.address), 'beta served clients after alpha died');
  // /metrics counts beta's writes as its log tells them: each lost compare, and at least a write per ACK.
  const metrics = await lab.apps[1]!.ns.exec('curl', ['-fsS', `http://${lab.apps[1]!.address}:8080/metrics`]);
  const writes = (outcome: string) => Number(new RegExp(`^bootcfg_dhcp_shared_lease_writes_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
  t.is(writes('conflict'), conflicts[1]!, "beta's lost compares on /metrics");
  t.true(writes('written') >= acksOf(beta), `beta wrote ${writes('written')} leases for its ${acksOf(beta)} ACKs`);

  // No lease file: the leases live in etcd only.
  const state = await readdir(path.join(lab.apps[0]!.dataDir, 'state')).catch(() => [] as string[]);
  t.false(
    state.some((f) => f.startsWith('leases')),
    `no lease file beside alpha's data: ${state.join(', ')}`,
  );

  // alpha comes back under the same name: it loads every lease, and etcd holds each one, bound to its client.
  alpha = await startOne(lab, 0);
  const loaded = await alpha.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('leases loaded'));
  t.is(loaded.active, CLIENTS, `alpha loaded every active lease: ${JSON.stringify(loaded)}`);
  const stored = await leasesInEtcd(lab.cluster);
  for (const b of bound) {
    const r = stored.get(b.lease!.ip);
    t.truthy(r, `${b.lease!.ip} (${b.mac}) is in etcd`);
    t.is(r?.mac, b.mac, `${b.lease!.ip} is bound to ${b.mac} in etcd`);
    t.is(r?.state, 'bound');
  }

  // One more client after the restart: it gets an address nobody holds, from either appliance.
  const late = await addClient(lab, CLIENTS, script);
  clients.push(late);
  await waitFor('the late client bound', () => boundOf(late), 60_000, 100);
  await late.exited;
  const lateLease = boundOf(late);
  t.truthy(lateLease, late.lines.join(' | '));
  t.false(byIp.has(lateLease!.ip), `the late client's ${lateLease!.ip} was free`);
});

maybe('shared leases (needs root, etcd-server): two segments with the same range keep their leases apart', async (t) => {
  t.timeout(120_000);
  // The same pool of addresses on two different networks: keyed by subnet, they never meet.
  const cluster = await startEtcdCluster({ tag: `${PREFIX}2` });
  t.teardown(() => cluster.stop());
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-lease2-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'udhcpc.sh');
  await writeFile(script, UDHCPC_SCRIPT);
  await chmod(script, 0o755);
  const { topo } = cluster;
  const apps: RunningAppliance[] = [];
  t.teardown(async () => {
    for (const a of apps) await a.stop();
  });
  const leases: string[] = [];
  for (const [i, net] of ['10.79.1', '10.79.2'].entries()) {
    const sw = await topo.namespace(`s${i}`);
    await topo.bridge(sw, 'br0');
    const ns = await topo.namespace(`a${i}`);
    await topo.veth(ns, 'eth0', sw, 'p-a', `${net}.1/24`);
    await topo.enslave(sw, 'p-a', 'br0');
    await cluster.attach(ns.name);
    apps.push(
      await startAppliance(
        [
          ...['--iface', 'eth0', '--address', `${net}.1:8080`, '--data-path', path.join(dir, `d${i}`), '--firmware-path', path.join(PROJECT_ROOT, 'firmware')],
          ...['--tftp-address', 'off', '--dhcp', 'full', '--dhcp-range', `${net}.100,${net}.110`, '--store', cluster.storeUrl(PREFIX), '--name', `seg${i}`],
        ],
        { ns, readyTimeoutMs: 30_000 },
      ),
    );
    const c = await topo.namespace(`k${i}`);
    await topo.veth(c, 'eth0', sw, 'p-k');
    await topo.enslave(sw, 'p-k', 'br0');
    const out = await c.exec('busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-s', script, '-t', '10', '-T', '1', '-A', '1']);
    const line = out.split('\n').find((l) => l.startsWith('EVENT bound '));
    t.truthy(line, out);
    leases.push(/ip=(\S+)/.exec(line!)![1]!);
  }
  // Each segment's first address: neither pool saw the other's lease.
  t.deepEqual(leases, ['10.79.1.100', '10.79.2.100']);
  const keys = (await cluster.etcdctl(['get', '--prefix', `/${PREFIX}/leases/`, '--keys-only'])).split('\n').filter(Boolean);
  t.deepEqual(keys.sort(), [`/${PREFIX}/leases/10.79.1.0-24/10.79.1.100`, `/${PREFIX}/leases/10.79.2.0-24/10.79.2.100`]);
});
