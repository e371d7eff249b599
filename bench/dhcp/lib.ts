/**
 * Shared by the DHCP benchmarks (proxy.ts, full.ts): server lifecycle inside a namespace,
 * CPU accounting from /proc, and the statistics both print. Benchmarks run as root inside
 * namespaces they create; servers are pinned to core 0, generators to core 1.
 */
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type Namespace } from '../../test/helpers/netns.ts';

/** Waits until something in `ns` listens on UDP `port`, failing fast if `child` exits. */
export async function waitListening(ns: Namespace, child: ChildProcess, what: string, port = 67): Promise<void> {
  await waitFor(
    `${what} listening on UDP ${port}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode})`);
      return (await ns.exec('ss', ['-lun'])).includes(`:${port} `);
    },
    30_000,
    100,
  );
}

/** SIGTERM, then SIGKILL after 5 s; by PID only. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * user+sys CPU of a process in ms. `ip netns exec`, `nice` and `taskset` all exec in
 * place, so a spawned child's pid is the server's own.
 */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

export function ratio(a: number, b: number): number {
  return +(a / b).toFixed(2);
}
