/** Shared set-up for the TFTP tests: a served root in a temp dir, an in-process server, and the real clients. */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FirmwareCatalog } from '../../src/firmware/catalog.ts';
import { BootTimeline } from '../../src/events/timeline.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { DEFAULT_LIMITS } from '../../src/tftp/server.ts';
import { TftpService, type TftpServiceOptions } from '../../src/tftp/service.ts';
import { DEFAULT_RETRANSMIT } from '../../src/tftp/session.ts';

export const FIRMWARE_DIR = fileURLToPath(new URL('../../firmware/', import.meta.url));
export const BIG_SIZE = 64 * 1024 * 1024;
/** Both engines that send blocks (--tftp-engine): the protocol tests run once on each. */
export const TFTP_ENGINES = ['worker', 'event-loop'] as const;

export interface Root {
  dir: string;
  /** sha256 of each file placed in the root. */
  sums: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * A served root: the real undionly.kpxe with its SHA256SUMS line, a 64 MiB file of random
 * bytes (not listed, served as an "other file"), and small files for the concurrency test.
 */
export async function makeRoot(opts: { big?: boolean; small?: number } = {}): Promise<Root> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-tftp-'));
  const sums: Record<string, string> = {};
  await copyFile(path.join(FIRMWARE_DIR, 'undionly.kpxe'), path.join(dir, 'undionly.kpxe'));
  sums['undionly.kpxe'] = await sha256File(path.join(dir, 'undionly.kpxe'));
  await writeFile(path.join(dir, 'SHA256SUMS'), `${sums['undionly.kpxe']}  undionly.kpxe\n`);
  if (opts.big) {
    const big = randomBytes(BIG_SIZE);
    await writeFile(path.join(dir, 'big.bin'), big);
    sums['big.bin'] = createHash('sha256').update(big).digest('hex');
  }
  const mib = randomBytes(1024 * 1024);
  await writeFile(path.join(dir, 'one-mib.bin'), mib);
  sums['one-mib.bin'] = createHash('sha256').update(mib).digest('hex');
  return { dir, sums, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Running {
  server: TftpService;
  port: number;
  metrics: Metrics;
  logs: Record<string, unknown>[];
  /** The metric's current value for a label set (0 when never incremented). */
  counter(name: 'tftpTransfers' | 'tftpBytes' | 'tftpRetransmissions' | 'malformedPackets', labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startServer(root: string, overrides: Partial<TftpServiceOptions> = {}): Promise<Running> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger({ level: 'info', format: 'json' }, sink);
  const metrics = new Metrics();
  const server = new TftpService(
    {
      listen: { host: '127.0.0.1', port: 0 },
      root,
      iface: undefined,
      catalog: await FirmwareCatalog.load(root),
      serveOtherFiles: true,
      maxTransfers: 1000,
      limits: DEFAULT_LIMITS,
      retransmit: DEFAULT_RETRANSMIT,
      ...overrides,
    },
    { log, metrics, timeline: new BootTimeline() },
  );
  await server.start();
  return {
    server,
    port: server.port,
    metrics,
    logs,
    async counter(name, labels = {}) {
      const m = await metrics[name].get();
      return m.values.filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val)).reduce((a, v) => a + v.value, 0);
    },
    stop: () => server.stop(),
  };
}

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a client; never rejects (the exit code is part of what tests check). */
export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 110_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export const clients = {
  /** tftp-hpa: RFC 1350 only (no options), so blksize 512 and lock-step. */
  tftpHpa: (port: number, remote: string, local: string) => run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', remote, local]),
  tftpHpaPut: (port: number, local: string, remote: string) => run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', local, remote]),
  atftp: (port: number, remote: string, local: string, options: Record<string, number> = {}) =>
    run('atftp', [...Object.entries(options).flatMap(([k, v]) => ['--option', `${k} ${v}`]), '-g', '-r', remote, '-l', local, '127.0.0.1', String(port)]),
  atftpPut: (port: number, local: string, remote: string) => run('atftp', ['-p', '-l', local, '-r', remote, '127.0.0.1', String(port)]),
  curl: (port: number, remote: string, local: string, extra: string[] = []) => run('curl', ['-sS', '--path-as-is', ...extra, '-o', local, `tftp://127.0.0.1:${port}/${remote}`]),
};

export async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-tftpout-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A port free on 127.0.0.1 right now, for the real CLI (which takes its ports as flags). */
export async function freePort(kind: 'udp' | 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
