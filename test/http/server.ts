/** A real HTTP service on 127.0.0.1:<random port> over a scratch data and images directory. */
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { createHttpService, createParts, type ApplianceParts } from '../../src/appliance.ts';
import { resolveConfig } from '../../src/config.ts';
import { FileStore } from '../../src/store/file-store.ts';
import { dataDir, memoryLog, type DataDir } from '../store/fixtures.ts';

export interface TestServer {
  url: string;
  ctx: ApplianceParts;
  store: FileStore;
  dir: DataDir;
  /** Log lines (JSON objects) written so far. */
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A loopback port free right now: the base URL (kernel and initrd URLs in scripts) must name the port before the server starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** `files` paths are relative to a scratch root holding data/ and images/. */
export async function startServer(files: Record<string, string | object>, options: Record<string, string> = {}): Promise<TestServer> {
  const dir = await dataDir(files);
  const { log, lines } = memoryLog();
  const config = resolveConfig(
    {
      address: `127.0.0.1:${await freePort()}`,
      'data-path': path.join(dir.root, 'data'),
      'images-path': path.join(dir.root, 'images'),
      'firmware-path': path.join(dir.root, 'firmware'),
      'log-format': 'json',
      ...options,
    },
    { lookupInterface: () => ({ address: '127.0.0.1', netmask: '255.0.0.0' }), isTty: false },
  );
  const parts = await createParts(config, log);
  const store = new FileStore(config.dataPath, { log, metrics: parts.metrics, pollIntervalMs: 60_000, debounceMs: 20 });
  const ctx: ApplianceParts = { ...parts, store };
  await store.open();
  const http = createHttpService(ctx);
  await http.start();
  const url = `http://127.0.0.1:${http.port}`;
  return {
    url,
    ctx,
    store,
    dir,
    lines,
    async close() {
      await http.stop();
      await store.close();
      await dir.cleanup();
    },
  };
}

export interface CurlResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Runs the real curl client; `-i` output is split into status, headers (lowercase names) and body. */
export function curl(args: string[]): Promise<CurlResponse> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-i', '--max-time', '20', ...args], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl ${args.join(' ')}: ${err.message} ${stderr.toString()}`));
      const end = stdout.indexOf('\r\n\r\n');
      const head = stdout.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head[0] ?? '')?.[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: stdout.subarray(end + 4) });
    });
  });
}
