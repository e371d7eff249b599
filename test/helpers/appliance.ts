/** Starts the appliance the way a user does (its CLI), from the TypeScript sources so tests never run a stale build. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Namespace } from './netns.ts';
import { onLines } from './lines.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** argv that runs the CLI: node --import tsx src/main.ts … */
export function cliArgs(args: string[]): string[] {
  return ['--import', 'tsx', MAIN, ...args];
}

export interface RunningAppliance {
  child: ChildProcess;
  /** Every log line so far (JSON objects). */
  lines: Record<string, unknown>[];
  /** Resolves with the first log line matching the predicate. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** Spawns the appliance (in `ns` when given), JSON logs collected; resolves once it logs ready. */
export async function startAppliance(args: string[], opts: { ns?: Namespace; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {}): Promise<RunningAppliance> {
  const spawnOpts: SpawnOptions = { cwd: PROJECT_ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] };
  const full = cliArgs(['--log-format', 'json', '--log-level', 'debug', ...args]);
  const child = opts.ns ? opts.ns.spawn(process.execPath, full, spawnOpts) : spawn(process.execPath, full, spawnOpts);
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<{ p: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  let err = '';
  child.stdout!.setEncoding('utf8').on(
    'data',
    onLines((text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text };
      }
      lines.push(line);
      for (const w of waiters)
        if (w.p(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
    }),
  );
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForLog = (p: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const seen = lines.find(p);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = { p, resolve };
      waiters.add(w);
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; last lines: ${JSON.stringify(lines.slice(-10))}`));
      }, timeoutMs);
      void exited.then((code) => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`appliance exited (${code}) before the expected log line; stderr: ${err.slice(-2000)}`));
      });
      const origResolve = w.resolve;
      w.resolve = (l) => {
        clearTimeout(timer);
        origResolve(l);
      };
    });
  };

  const running: RunningAppliance = {
    child,
    lines,
    waitForLog,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  await waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('ready'), opts.readyTimeoutMs ?? 20_000);
  return running;
}
