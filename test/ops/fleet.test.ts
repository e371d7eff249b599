/**
 * The fleet view with real parts: a 3-member etcd cluster (Debian's etcd-server) and two
 * appliances, each in its own namespace on the cluster's bridge, sharing it with --store.
 * A step served by one shows up in the other's /api/machines under the first one's --name,
 * and once the first is kill -9ed its machines leave the view when its lease (--fleet-ttl)
 * runs out.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MachineJson, MachineSummaryJson } from '../../src/http/api.ts';
import { canRunEtcd, startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { waitFor } from '../helpers/netns.ts';

const maybe = canRunEtcd ? test.serial : test.skip;
const MAC = '52:54:00:f1:ee:01';

async function getJson<T>(cluster: EtcdCluster, url: string): Promise<T> {
  return JSON.parse(await cluster.exec('curl', ['-sf', '--max-time', '5', url])) as T;
}

maybe('fleet view (needs root, etcd-server): a machine served by alpha is in beta’s /api/machines with alpha’s name, until alpha’s lease expires', async (t) => {
  t.timeout(120_000);
  const cluster = await startEtcdCluster({ tag: 'bca-fleet' });
  t.teardown(() => cluster.stop());
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-fleet-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));

  const apps: Record<string, { app: RunningAppliance; url: string }> = {};
  for (const name of ['alpha', 'beta']) {
    const ns = await cluster.topo.namespace(name.slice(0, 2));
    const { address } = await cluster.attach(ns.name);
    const app = await startAppliance(
      [
        ...['--address', `${address}:8080`, '--data-path', path.join(dir, name), '--firmware-path', path.join(PROJECT_ROOT, 'firmware')],
        ...['--store', cluster.storeUrl('bca-fleet'), '--name', name, '--fleet-ttl', '3'],
      ],
      { ns, readyTimeoutMs: 30_000 },
    );
    t.teardown(() => app.stop());
    apps[name] = { app, url: `http://${address}:8080` };
  }
  const { alpha, beta } = apps as Record<'alpha' | 'beta', { app: RunningAppliance; url: string }>;

  // A step at alpha: iPXE asking for its script.
  await cluster.exec('curl', ['-s', '-o', '/dev/null', `${alpha.url}/ipxe?mac=${MAC.replaceAll(':', '-')}`]);
  const seen = await waitFor(
    'alpha’s machine in beta’s /api/machines',
    async () => (await getJson<{ machines: MachineSummaryJson[] }>(cluster, `${beta.url}/api/machines`)).machines.find((m) => m.mac === MAC),
    20_000,
    200,
  );
  t.deepEqual(seen.appliances, ['alpha']);
  const detail = await getJson<MachineJson>(cluster, `${beta.url}/api/machines/${MAC}`);
  t.deepEqual(
    detail.events.map((e) => [e.step, e.appliance]),
    [['http.ipxe', 'alpha']],
  );
  // alpha tags its own steps too.
  const own = await getJson<MachineJson>(cluster, `${alpha.url}/api/machines/${MAC}`);
  t.deepEqual(
    own.events.map((e) => [e.step, e.appliance]),
    [['http.ipxe', 'alpha']],
  );

  // The same machine at beta: one machine, steps from both, in time order.
  await cluster.exec('curl', ['-s', '-o', '/dev/null', `${beta.url}/ipxe?mac=${MAC.replaceAll(':', '-')}`]);
  const both = await waitFor(
    'beta’s step beside alpha’s',
    async () => {
      const m = await getJson<MachineJson>(cluster, `${alpha.url}/api/machines/${MAC}`);
      return m.events.length === 2 ? m : undefined;
    },
    20_000,
    200,
  );
  t.deepEqual(
    both.events.map((e) => e.appliance),
    ['alpha', 'beta'],
  );
  const keys = (await cluster.etcdctl(['get', '--prefix', '/bca-fleet/fleet/', '--keys-only'])).split('\n').filter(Boolean);
  t.deepEqual(keys.sort(), [`/bca-fleet/fleet/alpha/${MAC}`, `/bca-fleet/fleet/beta/${MAC}`]);

  // alpha dies: its lease is no longer kept alive, and its steps leave beta's view by themselves.
  alpha.app.child.kill('SIGKILL');
  const after = await waitFor(
    'alpha’s steps gone from beta’s view',
    async () => {
      const m = await getJson<MachineJson>(cluster, `${beta.url}/api/machines/${MAC}`);
      return m.events.every((e) => e.appliance !== 'alpha') ? m : undefined;
    },
    30_000,
    250,
  );
  t.deepEqual(
    after.events.map((e) => [e.step, e.appliance]),
    [['http.ipxe', 'beta']],
  );
  t.deepEqual((await cluster.etcdctl(['get', '--prefix', '/bca-fleet/fleet/', '--keys-only'])).split('\n').filter(Boolean), [`/bca-fleet/fleet/beta/${MAC}`]);
});
