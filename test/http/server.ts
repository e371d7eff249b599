/** A real HTTP service on 127.0.0.1:<random port> over a scratch data and images directory. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { createContext, type AppContext } from '../../src/appliance.ts';
import { resolveConfig } from '../../src/config.ts';
import { HttpService } from '../../src/http/service.ts';
import { FileStore } from '../../src/store/file-store.ts';
import { dataDir, memoryLog, type DataDir } from '../store/fixtures.ts';

export interface TestServer {
  url: string;
  ctx: AppContext;
  store: FileStore;
  dir: DataDir;
  /** Log lines (JSON objects) written so far. */
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** `files` paths are relative to a scratch root holding data/ and images/. */
export async function startServer(files: Record<string, string | object>): Promise<TestServer> {
  const dir = await dataDir(files);
  const { log, lines } = memoryLog();
  const config = resolveConfig(
    {
      address: '127.0.0.1:0',
      'data-path': path.join(dir.root, 'data'),
      'images-path': path.join(dir.root, 'images'),
      'firmware-path': path.join(dir.root, 'firmware'),
      'log-format': 'json',
    },
    { lookupInterface: () => ({ address: '127.0.0.1', netmask: '255.0.0.0' }), isTty: false },
  );
  const ctx = await createContext(config, log);
  const store = new FileStore(config.dataPath, { log, metrics: ctx.metrics, pollIntervalMs: 60_000, debounceMs: 20 });
  ctx.store = store;
  await store.open();
  const http = new HttpService(ctx);
  await http.start();
  const url = `http://127.0.0.1:${http.port}`;
  // Kernel and initrd URLs must point back at this server; base-url is read per request.
  ctx.config.baseUrl = url;
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
