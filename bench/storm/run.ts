/**
 * bench/storm: a rack powering on at once. N scripted BIOS PXE machines (client.ts: DHCP →
 * TFTP undionly.kpxe at blksize 1456 lock-step → iPXE's DHCP → /boot.ipxe → /ipxe → a 16 MiB
 * kernel over HTTP) start within one second, against the appliance in full DHCP mode and
 * against the peer set-up (dnsmasq: full DHCP + its TFTP; nginx: the same boot.ipxe and /ipxe
 * texts, byte for byte, and the kernel), in turns in one run. Reports completions, failures
 * and p50/p99/max from DISCOVER to the last kernel byte, and the ratio ours / peer.
 *
 * One segment: a bridge in the server's namespace (br0, 10.81.0.1/16; the server under test
 * binds there, both sets of servers on the same address and ports so the scripts are the same
 * text) and one client namespace on a veth carrying every address of the DHCP range, with one
 * generator process in it. Servers on CPU 0, the generator on CPU 1 (taskset), as the other
 * benches. Bounded: at most 5,000 machines, each storm cut at --deadline-s.
 *
 *   sudo flock /tmp/bca-bench.lock node --import tsx bench/storm/run.ts [--clients 500] [--rounds 2]
 *        [--spread-ms 1000] [--deadline-s 120] [--cpu-prof]
 *
 * --cpu-prof runs our server under `node --cpu-prof` and prints where its CPU went (self time
 * by function, and by source file) after the run; the profiles stay in .cache/bench-storm/prof.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../../test/helpers/appliance.ts';
import { isRoot, sh, Topology, waitFor, type Namespace } from '../../test/helpers/netns.ts';
import { startDnsmasq, startNginx, type Daemon } from '../../test/e2e/lib/peers.ts';
import { cpuMs, ratio, stopChild, waitListening, tsxOnCore } from '../dhcp/lib.ts';
import { applianceArgs } from '../appliance.ts';
import { intToIpv4, ipv4ToInt } from '../../src/net/ipv4.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '2' },
    'spread-ms': { type: 'string', default: '1000' },
    'deadline-s': { type: 'string', default: '120' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});
if (!isRoot) {
  process.stderr.write('bench/storm: needs root (network namespaces)\n');
  process.exit(2);
}
const N = Math.max(1, Math.min(5000, Number(values.clients)));
const ROUNDS = Math.max(1, Math.min(5, Number(values.rounds)));
const CLIENT = fileURLToPath(new URL('./client.ts', import.meta.url));
const CACHE = path.join(PROJECT_ROOT, '.cache', 'bench-storm');
const FIRMWARE = path.join(PROJECT_ROOT, 'firmware');
const KERNEL_BYTES = 16 * 1024 * 1024;
const SERVER = '10.81.0.1';
const HTTP_PORT = 8080;
const BASE = `http://${SERVER}:${HTTP_PORT}`;
/** Twice the machines (at least 1,024): dnsmasq picks an address by hashing the MAC, so it needs room to avoid collisions. */
const RANGE_SIZE = Math.max(1024, 2 * N);
const RANGE_START = ipv4ToInt('10.81.4.0');
const RANGE = { start: intToIpv4(RANGE_START), end: intToIpv4(RANGE_START + RANGE_SIZE - 1) };

type Side = 'ours' | 'peer';

interface StormResult {
  clients: number;
  completed: number;
  failed: number;
  failedAt: Record<string, number>;
  /** DHCP NAKs answered by starting over from DISCOVER. */
  naks: number;
  firstFailures: { mac: string; step: string; error: string }[];
  wallS: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  perStep: Record<string, { p50: number | null; p99: number | null }>;
  /** Server user+sys CPU over the storm (dnsmasq + nginx for the peer), ms. */
  serverCpuMs?: number;
  /** RcvbufErrors of the server's namespace over the storm: requests lost because a socket's queue was full. */
  udpReceiveDrops?: number;
}

/** The kernel every machine downloads: 16 MiB of random bytes, made once. */
function ensureImages(): string {
  const images = path.join(CACHE, 'images');
  mkdirSync(images, { recursive: true });
  const kernel = path.join(images, 'vmlinuz');
  if (!existsSync(kernel) || statSync(kernel).size !== KERNEL_BYTES) writeFileSync(kernel, randomBytes(KERNEL_BYTES));
  chmodSync(kernel, 0o644);
  return images;
}

interface Running {
  pids: number[];
  stop(): Promise<void>;
}

async function waitHttp(srv: Namespace, url: string): Promise<void> {
  await waitFor(`${url} to answer`, async () => (await srv.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', url]).catch(() => '')) === '200', 30_000, 100);
}

async function startOurs(srv: Namespace, images: string, run: string, profDir: string | undefined): Promise<Running & { child: ChildProcess }> {
  const data = mkdtempSync(path.join(tmpdir(), 'bca-storm-data-'));
  mkdirSync(path.join(data, 'boot'), { recursive: true });
  writeFileSync(path.join(data, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz', cmdline: 'console=ttyS0' }));
  const log = openSync(path.join(CACHE, `ours-${run}.log`), 'w');
  const prof = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
  const child = srv.spawn(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      ...prof,
      ...applianceArgs([
        '--iface',
        'br0',
        '--dhcp',
        'full',
        '--dhcp-range',
        `${RANGE.start},${RANGE.end}`,
        '--address',
        `${SERVER}:${HTTP_PORT}`,
        '--data-path',
        data,
        '--images-path',
        images,
        '--firmware-path',
        FIRMWARE,
        '--log-format',
        'json',
        '--log-level',
        'info',
      ]),
    ],
    { cwd: PROJECT_ROOT, stdio: ['ignore', log, log] },
  );
  try {
    await waitListening(srv, child, 'bootcfg-appliance', 67);
    await waitListening(srv, child, 'bootcfg-appliance TFTP', 69);
    await waitHttp(srv, `${BASE}/healthz`);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    child,
    pids: [child.pid!],
    async stop() {
      await stopChild(child);
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** The texts nginx serves: exactly what the appliance answers, so both sides send the same bytes. */
/** UDP datagrams the namespace's sockets dropped for a full receive queue (RcvbufErrors, /proc/net/snmp). */
async function udpReceiveDrops(ns: Namespace): Promise<number> {
  const lines = (await ns.exec('cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp: '));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  const at = names?.indexOf('RcvbufErrors') ?? -1;
  return at > 0 ? Number(values?.[at] ?? 0) : 0;
}

async function captureScripts(srv: Namespace, www: string): Promise<void> {
  writeFileSync(path.join(www, 'boot.ipxe'), await srv.exec('curl', ['-sf', `${BASE}/boot.ipxe`]));
  // Every machine of the storm gets the default config: one rendering serves them all.
  writeFileSync(path.join(www, 'ipxe'), await srv.exec('curl', ['-sf', `${BASE}/ipxe?mac=02-bc-a5-ff-ff-ff`]));
}

async function startPeer(srv: Namespace, www: string, run: string): Promise<Running> {
  const nginx: Daemon = await startNginx(srv, { root: www, listen: `${SERVER}:${HTTP_PORT}`, workerConnections: 4 * N + 64 });
  let dnsmasq: Daemon;
  try {
    dnsmasq = await startDnsmasq(srv, {
      iface: 'br0',
      range: RANGE,
      netmask: '255.255.0.0',
      pxe: { tftpRoot: FIRMWARE, ipxeScriptUrl: `${BASE}/boot.ipxe` },
      // Its defaults (50 transfers, 1,000 leases) would refuse a rack; log-dhcp's option dumps are not what a site runs.
      extra: [`tftp-max=${N + 100}`, `dhcp-lease-max=${RANGE_SIZE}`],
      logDhcp: false,
    });
  } catch (err) {
    await nginx.stop();
    throw err;
  }
  await waitListening(srv, dnsmasq.child, 'dnsmasq TFTP', 69);
  return {
    pids: [dnsmasq.child.pid!, nginx.child.pid!],
    async stop() {
      writeFileSync(path.join(CACHE, `peer-${run}.log`), `--- dnsmasq ---\n${dnsmasq.log()}\n--- nginx ---\n${nginx.log()}`);
      await dnsmasq.stop();
      await nginx.stop();
    },
  };
}

async function storm(cli: Namespace, macBase: number): Promise<StormResult> {
  const out = await cli.exec(
    'taskset',
    tsxOnCore(1, CLIENT, [
      '--iface',
      'eth0',
      '--clients',
      String(N),
      '--spread-ms',
      values['spread-ms']!,
      '--deadline-s',
      values['deadline-s']!,
      '--mac-base',
      String(macBase),
      '--boot-file',
      path.join(FIRMWARE, 'undionly.kpxe'),
      '--kernel-bytes',
      String(KERNEL_BYTES),
    ]),
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as StormResult;
}

/** Self time per function and per file of every .cpuprofile in dir: where our server's CPU went. */
function summariseProfiles(dir: string): string {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
    const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
    for (const [i, id] of prof.samples.entries()) {
      const n = nodes.get(id)!;
      const us = prof.timeDeltas[i] ?? 0;
      if (n.callFrame.functionName === '(idle)') continue;
      total += us;
      const file = n.callFrame.url.replace(`file://${PROJECT_ROOT}`, '').replace(/^.*node_modules\//, 'node_modules/') || '(native)';
      const fn = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
      byFn.set(fn, (byFn.get(fn) ?? 0) + us);
      const key = file.startsWith('node_modules/')
        ? file
            .split('/')
            .slice(0, file.startsWith('node_modules/@') ? 3 : 2)
            .join('/')
        : file;
      byFile.set(key, (byFile.get(key) ?? 0) + us);
    }
  }
  const top = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, us]) => `  ${((100 * us) / total).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`)
      .join('\n');
  return `our server's busy CPU in the profile: ${(total / 1000).toFixed(0)} ms\nby file (self time):\n${top(byFile, 20)}\nby function (self time):\n${top(byFn, 30)}`;
}

async function main(): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  const images = ensureImages();
  const www = path.join(CACHE, 'www');
  rmSync(www, { recursive: true, force: true });
  mkdirSync(path.join(www, 'images'), { recursive: true });
  symlinkSync(path.join(images, 'vmlinuz'), path.join(www, 'images', 'vmlinuz'));
  const profDir = values['cpu-prof'] ? path.join(CACHE, 'prof') : undefined;
  if (profDir) {
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
  }

  const topo = new Topology({ prefix: 'bca-storm-' });
  const onSignal = () => {
    topo.destroySync();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: Record<Side, StormResult[]> = { ours: [], peer: [] };
  try {
    const srv = await topo.namespace('srv');
    const cli = await topo.namespace('cli');
    await topo.bridge(srv, 'br0', `${SERVER}/16`);
    await topo.veth(srv, 'p1', cli, 'eth0', undefined, undefined);
    await topo.enslave(srv, 'p1', 'br0');
    // Every address of the range on the client link, in one netlink batch.
    const batch = path.join(CACHE, 'addrs.batch');
    writeFileSync(batch, Array.from({ length: RANGE_SIZE }, (_, i) => `addr add ${intToIpv4(RANGE_START + i)}/16 dev eth0\n`).join(''));
    await sh('ip', ['-n', cli.name, '-batch', batch]);
    await sh('ip', ['-n', cli.name, 'link', 'set', 'eth0', 'up']);
    process.stderr.write(`bench/storm: ${new Date().toISOString()}, ${N} machines powering on within ${values['spread-ms']} ms, ${ROUNDS} round(s); server CPU 0, generator CPU 1\n`);

    let macBase = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // ours first in even rounds, the peer first in odd ones: other load on the machine falls on both alike.
      const order: Side[] = round % 2 ? ['peer', 'ours'] : ['ours', 'peer'];
      for (const side of order) {
        if (side === 'peer' && !existsSync(path.join(www, 'ipxe'))) {
          const ours = await startOurs(srv, images, 'capture', undefined);
          await captureScripts(srv, www).finally(() => ours.stop());
        }
        const running = side === 'ours' ? await startOurs(srv, images, `r${round}`, profDir) : await startPeer(srv, www, `r${round}`);
        let r: StormResult;
        try {
          if (side === 'ours' && !existsSync(path.join(www, 'ipxe'))) await captureScripts(srv, www);
          for (const pid of running.pids) await sh('taskset', ['-a', '-cp', '0', String(pid)]);
          const before = running.pids.reduce((a, p) => a + cpuMs(p), 0);
          const dropsBefore = await udpReceiveDrops(srv);
          r = await storm(cli, macBase);
          r.serverCpuMs = running.pids.reduce((a, p) => a + cpuMs(p), 0) - before;
          r.udpReceiveDrops = (await udpReceiveDrops(srv)) - dropsBefore;
        } finally {
          await running.stop();
        }
        macBase += N;
        results[side].push(r);
        process.stderr.write(
          `  round ${round + 1} ${side.padEnd(4)} completed ${r.completed}/${r.clients}, NAKs ${r.naks}, failed ${r.failed}${r.failed ? ` ${JSON.stringify(r.failedAt)} e.g. ${r.firstFailures[0]?.error}` : ''}; p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms; wall ${r.wallS} s; server CPU ${r.serverCpuMs} ms; UDP datagrams the server's sockets dropped ${r.udpReceiveDrops}\n`,
        );
        process.stderr.write(
          `        per step p50/p99 ms: ${Object.entries(r.perStep)
            .map(([k, v]) => `${k} ${v.p50}/${v.p99}`)
            .join(', ')}\n`,
        );
      }
    }
  } finally {
    await topo.destroy();
  }

  const med = (xs: (number | null | undefined)[]) => {
    const s = xs.filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
    if (!s.length) return NaN;
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
  };
  const summary = (side: Side) => ({
    completed: results[side].map((r) => r.completed),
    failed: results[side].map((r) => r.failed),
    p50: med(results[side].map((r) => r.p50)),
    p99: med(results[side].map((r) => r.p99)),
    max: med(results[side].map((r) => r.max)),
    serverCpuMs: med(results[side].map((r) => r.serverCpuMs)),
  });
  const ours = summary('ours');
  const peer = summary('peer');
  console.log(`\nstorm of ${N} BIOS PXE machines (medians of ${ROUNDS} round(s); ratio = ours / peer, ≤ 1.0 is the goal)`);
  console.log('server | completed | failed | p50 ms | p99 ms | max ms | server CPU ms');
  console.log('---|---|---|---|---|---|---');
  for (const [name, s] of [
    ['bootcfg-appliance', ours],
    ['dnsmasq + nginx', peer],
  ] as const) {
    console.log(`${name} | ${s.completed.join(', ')} | ${s.failed.join(', ')} | ${s.p50} | ${s.p99} | ${s.max} | ${s.serverCpuMs}`);
  }
  console.log(`ratio | | | ${ratio(ours.p50, peer.p50)} | ${ratio(ours.p99, peer.p99)} | ${ratio(ours.max, peer.max)} | ${ratio(ours.serverCpuMs, peer.serverCpuMs)}`);
  const outDir = path.join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `storm-${new Date().toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(out, JSON.stringify({ clients: N, rounds: ROUNDS, spreadMs: Number(values['spread-ms']), results, summary: { ours, peer } }, null, 2));
  console.log(`raw figures: ${path.relative(PROJECT_ROOT, out)}`);
  if (profDir) console.log(`\n${summariseProfiles(profDir)}`);
}

await main();
