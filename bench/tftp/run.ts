/**
 * TFTP benchmark: this appliance against tftpd-hpa, dnsmasq and atftpd, in one run so the
 * ratios compare like with like (shared/notes/peers.md: ±30 % between runs here).
 *
 *   - 64 MiB of random bytes at blksize 512 / 1024 / 1468 / 8192 (TFTP_BENCH_BLKSIZES picks), without and with windowsize 16
 *     (atftp client; tftpd-hpa and dnsmasq do not acknowledge windowsize, so atftp falls back
 *     to lock-step with them, which is what a client meets there)
 *   - 200 concurrent undionly.kpxe transfers in one curl (--parallel, blksize 1468):
 *     wall time and failures
 *   - GRUB's read of a kernel + initrd: the e2e guest's (.cache/e2e, built by the e2e tests),
 *     lock-step at blksize 1024 as Debian's signed GRUB reads them (wire.md)
 *
 * TFTP_BENCH_CASES=big,concurrent,grub picks cases (default: all).
 *
 * Each server listens on port 69 in its own namespace (10.70.N.1; dnsmasq has no TFTP port
 * option and tftpd-hpa will not start with only `lo`), pinned to CPU 0; the clients run in
 * one more namespace, on CPU 1, with a veth to each. The servers take turns within each
 * case, round after round (median of up to 3), so the load others put on this shared
 * machine falls on all of them alike. tftpd-hpa and atftpd come
 * from `apt-get download` + `dpkg-deb -x` into .cache/ (never installed, never a service).
 * Every byte is checked by sha256. Bounded: each client run is killed after 60 s
 * (TFTP_BENCH_TIMEOUT_S) and counted as a failure; results print as they come.
 *
 * Usage (root): node --import tsx bench/tftp/run.ts
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, Topology, type Namespace } from '../../test/helpers/netns.ts';
import { applianceArgs } from '../appliance.ts';

const PROJECT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE = path.join(PROJECT, '.cache', 'bench-tftp');
const PEERS = path.join(CACHE, 'peers');
const ROOT = path.join(CACHE, 'root');
const OUT = path.join(CACHE, 'out');
const serverIp = (i: number) => `10.70.${i + 1}.1`;
const clientIp = (i: number) => `10.70.${i + 1}.2`;
const ROUNDS = 3;
/** A case whose first round took longer than this is not repeated (lock-step at 512 takes ~a minute here). */
const REPEAT_BELOW_S = 10;
const BIG = 64 * 1024 * 1024;
const CONCURRENT = 200;
/** The e2e guest's kernel and initrd, what GRUB reads in the Secure Boot test. */
const GUEST_FILES = ['vmlinuz', 'initrd.gz'];
const CASES = new Set((process.env.TFTP_BENCH_CASES ?? 'big,concurrent,grub').split(',').map((c) => c.trim()));
const BLKSIZES = (process.env.TFTP_BENCH_BLKSIZES ?? '512,1024,1468,8192').split(',').map(Number);
const CLIENT_TIMEOUT_S = Number(process.env.TFTP_BENCH_TIMEOUT_S ?? 60);

if (!isRoot) {
  process.stderr.write('bench/tftp: needs root (network namespaces)\n');
  process.exit(2);
}
const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
const SERVER_CPU = '0';
const CLIENT_CPU = cpus >= 2 ? '1' : '0';

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** tftpd-hpa and atftpd (with the libwrap0 they link) unpacked under .cache/, not installed. */
function ensurePeers(): void {
  if (existsSync(path.join(PEERS, 'usr/sbin/in.tftpd')) && existsSync(path.join(PEERS, 'usr/sbin/atftpd')) && existsSync(path.join(PEERS, 'usr/lib/x86_64-linux-gnu/libwrap.so.0'))) return;
  const debs = path.join(CACHE, 'debs');
  mkdirSync(debs, { recursive: true });
  execFileSync('apt-get', ['download', 'tftpd-hpa', 'atftpd', 'libwrap0'], { cwd: debs, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const deb of readdirSync(debs).filter((f) => f.endsWith('.deb'))) execFileSync('dpkg-deb', ['-x', path.join(debs, deb), PEERS]);
}

/** The served folder: world-readable, since tftpd-hpa, atftpd and dnsmasq drop to nobody. */
function ensureRoot(): Record<string, string> {
  mkdirSync(ROOT, { recursive: true });
  chmodSync(ROOT, 0o755);
  copyFileSync(path.join(PROJECT, 'firmware', 'undionly.kpxe'), path.join(ROOT, 'undionly.kpxe'));
  const big = path.join(ROOT, 'big.bin');
  if (!existsSync(big) || statSync(big).size !== BIG) writeFileSync(big, randomBytes(BIG));
  for (const f of readdirSync(ROOT)) chmodSync(path.join(ROOT, f), 0o644);
  const sums: Record<string, string> = { 'undionly.kpxe': sha256(path.join(ROOT, 'undionly.kpxe')), 'big.bin': sha256(big) };
  for (const f of GUEST_FILES) {
    const from = path.join(PROJECT, '.cache', 'e2e', f);
    if (!existsSync(from)) continue;
    copyFileSync(from, path.join(ROOT, f));
    chmodSync(path.join(ROOT, f), 0o644);
    sums[f] = sha256(path.join(ROOT, f));
  }
  writeFileSync(path.join(ROOT, 'SHA256SUMS'), `${sums['undionly.kpxe']}  undionly.kpxe\n`);
  return sums;
}

interface Server {
  name: string;
  windowsize: boolean;
  start(ns: Namespace, log: number, ip: string): ChildProcess;
}

const peerEnv = { ...process.env, LD_LIBRARY_PATH: path.join(PEERS, 'usr/lib/x86_64-linux-gnu') };

/** An appliance; `run` gives node's argv for its flags: this tree's build, or another copy of src/ (TFTP_BENCH_BEFORE) to compare before/after in one run. */
function appliance(name: string, run: (flags: string[]) => string[], extra: string[] = []): Server {
  return {
    name,
    windowsize: true,
    start: (ns, log, ip) =>
      ns.spawn(
        'taskset',
        [
          '-c',
          SERVER_CPU,
          process.execPath,
          ...run([
            '--tftp-address',
            `${ip}:69`,
            // Every client of the bench shares one address: the per-address cap (default 8) would refuse the 200.
            '--tftp-max-per-client',
            '1000',
            '--address',
            `${ip}:18080`,
            '--firmware-path',
            ROOT,
            '--log-format',
            'json',
            '--log-level',
            'info',
            ...extra,
          ]),
        ],
        {
          cwd: PROJECT,
          stdio: ['ignore', log, log],
        },
      ),
  };
}

/** TFTP_BENCH_BEFORE=<a copy of src/>: that copy runs too, as `before`, in the same rounds. */
const BEFORE = process.env.TFTP_BENCH_BEFORE;
if (BEFORE && process.env.BENCH_APPLIANCE !== 'src') process.stderr.write('bench/tftp: `before` runs its src/ through tsx and `ours` runs dist/; BENCH_APPLIANCE=src runs both through tsx\n');

/** TFTP_BENCH_EVENT_LOOP=1: this tree again with --tftp-engine event-loop, as `event-loop`: the worker engine against Node's dgram in one run. */
const EVENT_LOOP = process.env.TFTP_BENCH_EVENT_LOOP === '1';

const SERVERS: Server[] = [
  appliance('ours', applianceArgs),
  // A copy of src/ has no build of its own: compare it with BENCH_APPLIANCE=src, so that both run through tsx.
  ...(BEFORE ? [appliance('before', (flags) => ['--import', 'tsx', path.join(path.resolve(BEFORE), 'main.ts'), ...flags])] : []),
  ...(EVENT_LOOP ? [appliance('event-loop', applianceArgs, ['--tftp-engine', 'event-loop'])] : []),
  {
    name: 'tftpd-hpa',
    windowsize: false,
    start: (ns, log, ip) => ns.spawn('taskset', ['-c', SERVER_CPU, path.join(PEERS, 'usr/sbin/in.tftpd'), '-L', '-a', `${ip}:69`, '-s', ROOT], { env: peerEnv, stdio: ['ignore', log, log] }),
  },
  {
    name: 'dnsmasq',
    windowsize: false,
    start: (ns, log, ip) =>
      ns.spawn(
        'taskset',
        [
          '-c',
          SERVER_CPU,
          'dnsmasq',
          '-k',
          '--conf-file=/dev/null',
          '--port=0',
          '--enable-tftp',
          `--tftp-root=${ROOT}`,
          `--listen-address=${ip}`,
          '--bind-interfaces',
          `--tftp-max=${CONCURRENT + 100}`,
          '--pid-file',
          '--log-facility=-',
        ],
        {
          stdio: ['ignore', log, log],
        },
      ),
  },
  {
    name: 'atftpd',
    windowsize: true,
    start: (ns, log, ip) =>
      ns.spawn(
        'taskset',
        ['-c', SERVER_CPU, path.join(PEERS, 'usr/sbin/atftpd'), '--daemon', '--no-fork', '--port', '69', '--bind-address', ip, '--maxthread', String(CONCURRENT + 100), '--logfile', '-', ROOT],
        {
          env: peerEnv,
          stdio: ['ignore', log, log],
        },
      ),
  },
];

function runIn(ns: Namespace, cmd: string, args: string[]): Promise<{ ok: boolean; ms: number; err: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns.name, 'timeout', String(CLIENT_TIMEOUT_S), 'taskset', '-c', CLIENT_CPU, cmd, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, _out, stderr) => {
      resolve({ ok: !err, ms: performance.now() - started, err: err ? `${err.message} ${String(stderr).slice(-300)}` : '' });
    });
  });
}

async function waitReady(cli: Namespace, ip: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  const probe = path.join(OUT, 'ready.kpxe');
  while (Date.now() < deadline) {
    const r = await runIn(cli, 'curl', ['-s', '--max-time', '1', '-o', probe, `tftp://${ip}/undionly.kpxe`]);
    if (r.ok) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('server did not answer within 20 s');
}

interface Result {
  /** Median of the rounds run. */
  seconds: number;
  runs: number[];
  failures: number;
  note?: string;
}

interface Row {
  case: string;
  results: Record<string, Result>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  ensurePeers();
  const sums = ensureRoot();
  mkdirSync(OUT, { recursive: true });
  const topo = new Topology();
  const onSignal = () => {
    topo.destroySync();
    report(rows);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const rows: Row[] = [];
  const row = (name: string): Row => {
    let r = rows.find((x) => x.case === name);
    if (!r) {
      r = { case: name, results: {} };
      rows.push(r);
    }
    return r;
  };
  const children: ChildProcess[] = [];
  try {
    const cli = await topo.namespace('tcl');
    for (const [i, server] of SERVERS.entries()) {
      const ns = await topo.namespace(`ts${i}`);
      await topo.veth(ns, 'eth0', cli, `e${i}`, `${serverIp(i)}/24`, `${clientIp(i)}/24`);
      children.push(server.start(ns, openSync(path.join(CACHE, `${server.name}.log`), 'w'), serverIp(i)));
    }
    for (const i of SERVERS.keys()) await waitReady(cli, serverIp(i));

    /** Runs one case against every server, in turns, and records medians. */
    const measure = async (name: string, once: (i: number, server: Server) => Promise<{ seconds: number; failures: number; note?: string }>) => {
      const runs: Record<string, { seconds: number; failures: number; note?: string }[]> = {};
      for (let round = 0; round < ROUNDS; round++) {
        // Rotate who goes first, so no server always follows the same neighbour.
        const order = SERVERS.map((_, k) => (k + round) % SERVERS.length);
        for (const i of order) {
          const server = SERVERS[i]!;
          const r = await once(i, server);
          runs[server.name] ??= [];
          runs[server.name]!.push(r);
          process.stderr.write(`  ${server.name.padEnd(10)} ${name.padEnd(46)} ${r.seconds.toFixed(2)} s${r.failures ? ` ${r.failures} FAILED ${r.note ?? ''}` : ''}\n`);
        }
        const slowest = Math.max(...Object.values(runs).map((x) => x[x.length - 1]!.seconds));
        if (slowest > REPEAT_BELOW_S) break;
      }
      for (const [server, rs] of Object.entries(runs)) {
        const ok = rs.filter((r) => !r.failures);
        row(name).results[server] = {
          seconds: median((ok.length ? ok : rs).map((r) => r.seconds)),
          runs: rs.map((r) => Math.round(r.seconds * 100) / 100),
          failures: rs.reduce((a, r) => a + r.failures, 0),
          ...(rs.find((r) => r.note) ? { note: rs.find((r) => r.note)!.note! } : {}),
        };
      }
    };

    for (const blksize of CASES.has('big') ? BLKSIZES : []) {
      for (const windowsize of [1, 16]) {
        const name = `64 MiB blksize ${blksize}${windowsize > 1 ? ` windowsize ${windowsize}` : ''}`;
        await measure(name, async (i, server) => {
          const out = path.join(OUT, 'big.bin');
          rmSync(out, { force: true });
          const opts = ['--option', `blksize ${blksize}`, ...(windowsize > 1 ? ['--option', `windowsize ${windowsize}`] : [])];
          const r = await runIn(cli, 'atftp', [...opts, '-g', '-r', 'big.bin', '-l', out, serverIp(i), '69']);
          const intact = r.ok && existsSync(out) && sha256(out) === sums['big.bin'];
          return {
            seconds: r.ms / 1000,
            failures: intact ? 0 : 1,
            ...(intact ? (windowsize > 1 && !server.windowsize ? { note: 'windowsize not supported: lock-step' } : {}) : { note: (r.err || 'checksum mismatch').split('\n')[0]!.slice(0, 120) }),
          };
        });
      }
    }
    if (CASES.has('grub') && GUEST_FILES.every((f) => sums[f])) {
      await measure('GRUB: guest kernel + initrd, blksize 1024 lock-step', async (i) => {
        let ms = 0;
        let failures = 0;
        let note: string | undefined;
        for (const f of GUEST_FILES) {
          const out = path.join(OUT, f);
          rmSync(out, { force: true });
          const r = await runIn(cli, 'atftp', ['--option', 'blksize 1024', '--option', 'tsize 0', '-g', '-r', f, '-l', out, serverIp(i), '69']);
          ms += r.ms;
          if (!(r.ok && existsSync(out) && sha256(out) === sums[f])) {
            failures++;
            note = (r.err || 'checksum mismatch').split('\n')[0]!.slice(0, 120);
          }
        }
        return { seconds: ms / 1000, failures, ...(note ? { note } : {}) };
      });
    } else if (CASES.has('grub')) process.stderr.write('  (GRUB case skipped: no .cache/e2e/vmlinuz and initrd.gz; the e2e tests build them)\n');
    if (CASES.has('concurrent'))
      await measure(`${CONCURRENT} concurrent undionly.kpxe (curl, blksize 1468)`, async (i) => {
        const par = path.join(OUT, 'par');
        rmSync(par, { recursive: true, force: true });
        mkdirSync(par);
        const args = ['-sS', '--parallel', '--parallel-max', String(CONCURRENT), '--tftp-blksize', '1468'];
        for (let k = 0; k < CONCURRENT; k++) args.push('-o', path.join(par, `p${k}`), `tftp://${serverIp(i)}/undionly.kpxe`);
        const r = await runIn(cli, 'curl', args);
        let failures = 0;
        for (let k = 0; k < CONCURRENT; k++) {
          const f = path.join(par, `p${k}`);
          if (!existsSync(f) || sha256(f) !== sums['undionly.kpxe']) failures++;
        }
        return { seconds: r.ms / 1000, failures, ...(failures ? { note: r.err.split('\n')[0]!.slice(0, 120) } : {}) };
      });
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await new Promise((res) => setTimeout(res, 1000));
    await topo.destroy();
  }
  report(rows);
}

function report(rows: Row[]): void {
  const peers = SERVERS.map((s) => s.name).filter((n) => n !== 'ours');
  const pad = (s: string, n: number) => s.padEnd(n);
  const lines: string[] = [];
  lines.push(`${pad('case', 48)}${['ours', ...peers].map((n) => pad(n, 14)).join('')}`);
  for (const r of rows) {
    lines.push(
      `${pad(r.case, 48)}${['ours', ...peers]
        .map((n) => {
          const x = r.results[n];
          return pad(x ? `${x.seconds.toFixed(2)}s${x.failures ? ` ${x.failures}F` : ''}${x.note?.startsWith('windowsize') ? '*' : ''}` : '-', 14);
        })
        .join('')}`,
    );
  }
  lines.push('');
  lines.push('speed ratio = peer seconds / our seconds (above 1: we are faster)');
  lines.push(`${pad('case', 48)}${peers.map((n) => pad(`vs ${n}`, 16)).join('')}`);
  for (const r of rows) {
    const ours = r.results.ours;
    lines.push(`${pad(r.case, 48)}${peers.map((n) => pad(ours && r.results[n] ? `${(r.results[n]!.seconds / ours.seconds).toFixed(2)}x` : '-', 16)).join('')}`);
  }
  lines.push('* the peer does not acknowledge windowsize; atftp fell back to lock-step');
  lines.push(`seconds are medians of up to ${ROUNDS} interleaved rounds; every run: bench/results/tftp-*.json`);
  const failed = rows.flatMap((r) =>
    Object.entries(r.results)
      .filter(([, x]) => x.failures)
      .map(([n, x]) => `${r.case} / ${n}: ${x.failures} of ${x.runs.length} runs failed: ${x.note ?? ''}`),
  );
  if (failed.length) lines.push('', 'failures:', ...failed);
  process.stdout.write(`${lines.join('\n')}\n`);
  const results = path.join(PROJECT, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  writeFileSync(path.join(results, `tftp-${new Date().toISOString().replaceAll(':', '-')}.json`), JSON.stringify({ cpus, rows }, null, 2));
}

await main();
