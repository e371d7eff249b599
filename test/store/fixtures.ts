/** Temporary data directories and a log that tests can read back. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface MemoryLog {
  log: Logger;
  lines: Record<string, unknown>[];
}

export function memoryLog(): MemoryLog {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString('utf8').split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug', base: undefined }, sink), lines };
}

export interface DataDir {
  root: string;
  write(rel: string, content: string | object): Promise<string>;
  remove(rel: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** A scratch --data-path (and anything else a test wants next to it), removed by cleanup(). */
export async function dataDir(files: Record<string, string | object> = {}): Promise<DataDir> {
  const root = await mkdtemp(path.join(tmpdir(), 'bca-store-'));
  const dir: DataDir = {
    root,
    async write(rel, content) {
      const full = path.join(root, rel);
      await mkdir(path.dirname(full), { recursive: true });
      await writeFile(full, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return full;
    },
    async remove(rel) {
      await rm(path.join(root, rel), { force: true, recursive: true });
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
  for (const [rel, content] of Object.entries(files)) await dir.write(rel, content);
  return dir;
}

/** Polls until `check` returns a value other than undefined; bounded so a missed change fails the test instead of hanging it. */
export async function eventually<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
