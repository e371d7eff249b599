/**
 * Configs on etcd (issue 13, points 1, 2 and the config half of 5): a real 3-member etcd cluster
 * (Debian's etcd-server, each member in its own namespace on one bridge), `store push` of the
 * example data/, and two appliances started with the CLI (`--store etcd://…`, HTTP only), each in
 * its own namespace on the cluster's bridge. Every request to them is a curl from the cluster's
 * client namespace. Needs root and /usr/bin/etcd; skips otherwise.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readConfigTree } from '../../src/store/config-tree.ts';
import { cliArgs, PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { canRunEtcd, startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.ts';
import { sh, waitFor, type Namespace } from '../helpers/netns.ts';

const maybe = canRunEtcd ? test.serial : test.skip;
const PREFIX = 'e2e';
const MAC = '52:54:00:c7:b6:64';
const MAC_FILE = `boot/mac/${MAC}.json`;
const DATA = path.join(PROJECT_ROOT, 'data');

interface Node {
  app: RunningAppliance;
  url: string;
  ns: string;
  iface: string;
  args: string[];
  namespace: Namespace;
}

let cluster: EtcdCluster;
let scratch: string;
let nodes: Node[] = [];

/** The CLI run inside the cluster's client namespace (the only place that reaches the members). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', cluster.clientNs.name, process.execPath, ...cliArgs(args)], { cwd: PROJECT_ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const store = (action: string, dir: string) => cli(['store', action, dir, '--store', cluster.storeUrl(PREFIX)]);

/** curl from the cluster's client namespace, or (`fromInside`) from the appliance's own, which reaches it with its link down. */
async function get(node: Node, route: string, fromInside = false): Promise<{ status: number; body: string }> {
  const args = ['-s', '--max-time', '3', '-w', '\n%{http_code}', `${node.url}${route}`];
  const out = fromInside ? await sh('ip', ['netns', 'exec', node.ns, 'curl', ...args]) : await cluster.exec('curl', args);
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

/** Polls every appliance until `ok` holds for its answer to `route`; returns the ms each took from `since`. */
async function untilAll(route: string, ok: (body: string, status: number) => boolean, what: string, since = Date.now()): Promise<number[]> {
  return Promise.all(
    nodes.map(async (node, i) => {
      await waitFor(
        `appliance ${i}: ${what}`,
        async () => {
          const r = await get(node, route);
          return ok(r.body, r.status);
        },
        5000,
        20,
      );
      return Date.now() - since;
    }),
  );
}

/** A copy of data/ to edit. */
async function copyOfData(name: string): Promise<string> {
  const dir = path.join(scratch, name);
  await cp(DATA, dir, { recursive: true });
  return dir;
}

async function setMessage(dir: string, message: string): Promise<void> {
  const file = path.join(dir, MAC_FILE);
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...config, cmdline: { ...(config.cmdline as object), 'bca.msg': message } }, null, 2));
}

test.before(async () => {
  if (!canRunEtcd) return;
  scratch = await mkdtemp(path.join(tmpdir(), 'bca-etcd-e2e-'));
  cluster = await startEtcdCluster({ tag: 'bca-etcd' });
  const pushed = await store('push', DATA);
  if (pushed.code !== 0) throw new Error(`store push of data/ failed: ${pushed.stderr}`);
  for (let i = 0; i < 2; i++) {
    const ns = await cluster.topo.namespace(`ap${i}`);
    const { address, iface } = await cluster.attach(ns.name);
    const dataPath = path.join(scratch, `appliance${i}`);
    const args = ['--address', `${address}:8080`, '--dhcp', 'off', '--tftp-address', 'off', '--data-path', dataPath, '--store', cluster.storeUrl(PREFIX)];
    const app = await startAppliance(args, { ns });
    nodes.push({ app, url: `http://${address}:8080`, ns: ns.name, iface, args, namespace: ns });
  }
});

test.after.always(async () => {
  if (!canRunEtcd) return;
  for (const n of nodes) await n.app.stop();
  nodes = [];
  await cluster?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

maybe('store push of data/ printed each key; both appliances answer /ipxe alike from it', async (t) => {
  const again = await store('push', DATA);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^no changes/);
  for (const route of [`/ipxe?mac=${MAC}`, '/ipxe?mac=52:54:00:00:00:99', '/ipxe?uuid=1cff2cd8-f00a-42c8-9426-f55e6a1847f6', '/cloud?mac=52:54:00:12:34:56']) {
    const [a, b] = await Promise.all(nodes.map((n) => get(n, route)));
    t.is(a!.status, 200, route);
    t.is(a!.body.replaceAll(nodes[0]!.url, 'URL'), b!.body.replaceAll(nodes[1]!.url, 'URL'), route);
  }
  t.regex((await get(nodes[0]!, `/ipxe?mac=${MAC}`)).body, /priority=low/);
  t.is((await get(nodes[0]!, '/healthz')).body, 'ok\n');
  t.regex((await get(nodes[0]!, '/metrics')).body, /bootcfg_store_connected\{store="etcd"\} 1/);
});

maybe('store diff says what a push would change (exit 1), a push of a changed copy reaches both appliances, then diff exits 0', async (t) => {
  const dir = await copyOfData('changed');
  await setMessage(dir, 'first-change');
  const before = await store('diff', dir);
  t.is(before.code, 1, before.stdout + before.stderr);
  t.regex(before.stdout, new RegExp(`differs: /${PREFIX}/config/${MAC_FILE}`));
  const started = Date.now();
  const pushed = await store('push', dir);
  const exited = Date.now();
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stdout, new RegExp(`^changed /${PREFIX}/config/${MAC_FILE}$`, 'm'));
  t.regex(pushed.stdout, /in one transaction \(revision \d+\): 0 added, 1 changed, 0 removed/);
  const took = await untilAll(`/ipxe?mac=${MAC}`, (body) => body.includes('bca.msg=first-change'), 'the pushed change', exited);
  // The commit lies between the CLI's start (node + tsx take ~1 s to load) and its exit.
  t.log(
    `push → served by both appliances: ${took.join(' ms, ')} ms after the push command exited, ${took.map((ms) => ms + exited - started).join(' ms, ')} ms after it started (contract: ≤ 1000 ms from the commit)`,
  );
  const after = await store('diff', dir);
  t.is(after.code, 0, after.stdout);
  t.regex(after.stdout, /^no differences/);
  // etcdctl starts in milliseconds: from its start to both serving bounds commit → served from above.
  const value = JSON.parse(await readFile(path.join(dir, MAC_FILE), 'utf8')) as { cmdline: Record<string, unknown> };
  value.cmdline['bca.msg'] = 'etcdctl-change';
  const putStarted = Date.now();
  await cluster.etcdctl(['put', `/${PREFIX}/config/${MAC_FILE}`, JSON.stringify(value)]);
  const bound = await untilAll(`/ipxe?mac=${MAC}`, (body) => body.includes('bca.msg=etcdctl-change'), 'the etcdctl change', putStarted);
  t.log(`etcdctl put started → served by both appliances: ${bound.join(' ms, ')} ms (an upper bound on commit → served; contract: ≤ 1000 ms)`);
  const differs = await store('diff', dir);
  t.is(differs.code, 1, `the store now differs from the directory: ${differs.stdout}${differs.stderr}`);
  const restored = await store('push', dir);
  t.is(restored.code, 0, restored.stderr);
});

maybe('store push refuses a directory validate rejects, and writes nothing', async (t) => {
  const dir = await copyOfData('broken-dir');
  await writeFile(path.join(dir, 'boot', 'default.json'), '{"kernel": ');
  await writeFile(path.join(dir, 'boot', 'mac', 'not-a-mac.json'), '{"kernel":"/k"}');
  const pushed = await store('push', dir);
  t.is(pushed.code, 1);
  t.regex(pushed.stderr, /boot\/default\.json: /);
  t.regex(pushed.stderr, /not-a-mac\.json: file name is not a MAC address/);
  t.regex(pushed.stderr, /2 bad file\(s\) in .*: nothing pushed/);
  const keys = await cluster.etcdctl(['get', '--prefix', '--keys-only', `/${PREFIX}/config/`]);
  t.false(keys.includes('not-a-mac'));
});

maybe('a broken value written with etcdctl is reported by its key, and the last good version keeps serving', async (t) => {
  const key = `/${PREFIX}/config/${MAC_FILE}`;
  await cluster.etcdctl(['put', key, '{"kernel": "/images/x", "initrd": 7}']);
  await Promise.all(nodes.map((n) => n.app.waitForLog((l) => l.key === `etcd:${key}` && typeof l.msg === 'string' && l.msg.startsWith('broken value') && l.lastGoodServing === true, 5000)));
  const line = nodes[0]!.app.lines.find((l) => l.key === `etcd:${key}`)!;
  t.regex(String(line.reason), /initrd/);
  for (const n of nodes) {
    const r = await get(n, `/ipxe?mac=${MAC}`);
    t.is(r.status, 200);
    t.true(r.body.includes('bca.msg=first-change'), 'the last good version serves');
  }
  const explained = await get(nodes[0]!, `/api/explain?mac=${MAC}`);
  t.regex(explained.body, new RegExp(`"path":"etcd:${key}","reason":"[^"]*initrd`), 'explain names the key in etcd and its problem');
});

maybe('one etcd member killed: still serving, still updating; a stray key is reported, then removed by the next push', async (t) => {
  await cluster.killMember(0);
  t.teardown(() => cluster.restartMember(0));
  // Right after a kill the cluster may be electing a leader: etcdctl is retried until it lands.
  await waitFor('etcdctl put with a member down', () => cluster.etcdctl(['put', `/${PREFIX}/config/stray`, 'x']).then(() => true), 10_000, 200);
  const dir = await copyOfData('member-down');
  await setMessage(dir, 'member-down');
  const pushed = await store('push', dir);
  const exited = Date.now();
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stdout, /^changed /m, 'the broken value is replaced');
  t.regex(pushed.stdout, new RegExp(`^removed /${PREFIX}/config/stray \\(not a path of the data layout\\)$`, 'm'));
  const took = await untilAll(`/ipxe?mac=${MAC}`, (body) => body.includes('bca.msg=member-down'), 'the change pushed with a member down', exited);
  t.log(`with member 0 killed: push exited → served by both: ${took.join(' ms, ')} ms`);
  for (const n of nodes) t.is((await get(n, '/healthz')).body, 'ok\n');
});

maybe('store pull writes the store back as files that diff and push find identical', async (t) => {
  const dir = path.join(scratch, 'pulled');
  const pulled = await store('pull', dir);
  t.is(pulled.code, 0, pulled.stderr);
  t.regex(pulled.stdout, new RegExp(`^wrote /${PREFIX}/config/${MAC_FILE}$`, 'm'));
  const source = await readConfigTree(path.join(scratch, 'member-down'));
  const back = await readConfigTree(dir);
  t.deepEqual([...back.keys()].sort(), [...source.keys()].sort());
  for (const [rel, bytes] of source) t.true(back.get(rel)?.equals(bytes), rel);
  const same = await store('diff', dir);
  t.is(same.code, 0, same.stdout + same.stderr);
  const again = await store('pull', dir);
  t.regex(again.stdout, /^pulled 5 file\(s\)/m);
  t.notRegex(again.stdout, /^(wrote|updated|deleted) /m, 'a second pull changes nothing');
});

maybe('an appliance cut off from etcd says so on /healthz and /metrics, keeps serving, and resyncs what it missed', async (t) => {
  const node = nodes[1]!;
  // Cut only this appliance's link: etcd stays up, so a push happens while it cannot see it.
  const link = (state: 'up' | 'down') => sh('ip', ['-n', node.ns, 'link', 'set', node.iface, state]);
  await link('down');
  t.teardown(() => link('up').catch(() => undefined));
  await node.app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('etcd store unreachable'), 15_000);
  // With its link down it is asked from inside its namespace.
  const health = await get(node, '/healthz', true);
  t.regex(health.body, /^degraded: config store unreachable since \S+ \(.+\); serving the last configs read\n$/);
  t.regex((await get(node, '/metrics', true)).body, /bootcfg_store_connected\{store="etcd"\} 0/);
  t.true((await get(node, `/ipxe?mac=${MAC}`, true)).body.includes('bca.msg=member-down'), 'the last configs read keep serving');
  const dir = await copyOfData('missed');
  await setMessage(dir, 'missed-while-cut-off');
  const pushedAgain = await store('push', dir);
  t.is(pushedAgain.code, 0, pushedAgain.stderr);
  await waitFor('the connected appliance to take the change', async () => (await get(nodes[0]!, `/ipxe?mac=${MAC}`)).body.includes('bca.msg=missed-while-cut-off'), 5000, 20);
  t.false((await get(node, `/ipxe?mac=${MAC}`, true)).body.includes('bca.msg=missed-while-cut-off'));
  await link('up');
  await waitFor('the cut-off appliance to resync', async () => (await get(node, `/ipxe?mac=${MAC}`)).body.includes('bca.msg=missed-while-cut-off'), 15_000, 50);
  t.is((await get(node, '/healthz')).body, 'ok\n');
  t.is(node.app.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('etcd store unreachable')).length, 1, 'the outage is logged once');
});

maybe('every etcd member down: /healthz degraded with the reason, /metrics 0, still serving; back up: in step again', async (t) => {
  for (let i = 0; i < 3; i++) await cluster.killMember(i);
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) for (let i = 0; i < 3; i++) await cluster.restartMember(i).catch(() => undefined);
  });
  await untilAll('/healthz', (body) => body.startsWith('degraded: config store unreachable since '), 'healthz degraded');
  for (const n of nodes) {
    const r = await get(n, `/ipxe?mac=${MAC}`);
    t.is(r.status, 200);
    t.true(r.body.includes('bca.msg=missed-while-cut-off'));
    t.regex((await get(n, '/metrics')).body, /bootcfg_store_connected\{store="etcd"\} 0/);
  }
  t.log(`healthz while etcd is down: ${(await get(nodes[0]!, '/healthz')).body.trim()}`);
  // An appliance restarted meanwhile serves what it last read (its mirror under --data-path).
  const second = nodes[1]!;
  await second.app.stop();
  second.app = await startAppliance(second.args, { ns: second.namespace });
  await second.app.waitForLog((l) => typeof l.msg === 'string' && /^serving the 5 config file\(s\) last read from etcd/.test(l.msg));
  t.true((await get(second, `/ipxe?mac=${MAC}`)).body.includes('bca.msg=missed-while-cut-off'), 'the restarted appliance serves its mirror');
  t.regex((await get(second, '/healthz')).body, /^degraded: /);
  // Members come back one by one; quorum needs two, so restart them concurrently.
  await Promise.all([0, 1, 2].map((i) => cluster.restartMember(i)));
  restarted = true;
  await waitFor('both appliances in step again', async () => (await Promise.all(nodes.map((n) => get(n, '/healthz')))).every((r) => r.body === 'ok\n'), 20_000, 100);
  const dir = await copyOfData('after-outage');
  await setMessage(dir, 'after-outage');
  const pushedAgain = await store('push', dir);
  t.is(pushedAgain.code, 0, pushedAgain.stderr);
  await untilAll(`/ipxe?mac=${MAC}`, (body) => body.includes('bca.msg=after-outage'), 'a change after the outage');
});

maybe('the matchbox layout from etcd: groups, profiles and templates pushed beside the seed files are served by both', async (t) => {
  const dir = await copyOfData('with-matchbox');
  await cp(path.join(PROJECT_ROOT, 'examples', 'etcd-cluster'), dir, { recursive: true });
  const pushed = await store('push', dir);
  t.is(pushed.code, 0, pushed.stderr);
  t.regex(pushed.stdout, new RegExp(`^added /${PREFIX}/config/groups/node1\\.json$`, 'm'));
  t.regex(pushed.stdout, new RegExp(`^added /${PREFIX}/config/ignition/etcd\\.ign$`, 'm'));
  await untilAll('/ignition?mac=52:54:00:a1:00:01', (body, status) => status === 200 && body.includes('node1'), 'the group’s Ignition');
  const [a, b] = await Promise.all(nodes.map((n) => get(n, '/metadata?mac=52:54:00:a1:00:02')));
  t.is(a!.status, 200);
  t.is(a!.body, b!.body);
  t.regex(a!.body, /ETCD_NAME=node2/);
});
