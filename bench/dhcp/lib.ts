/**
 * Shared by the DHCP benchmarks (proxy.ts, full.ts, in-process.ts) and bench/memory: server lifecycle inside a namespace,
 * CPU accounting from /proc, and the statistics both print. Benchmarks run as root inside
 * namespaces they create; servers are pinned to core 0, generators to core 1.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type Namespace } from '../../test/helpers/netns.ts';
import { PROJECT_ROOT } from '../../test/helpers/appliance.ts';
import { applianceArgs } from '../appliance.ts';
import path from 'node:path';

/** `taskset` arguments that run a TypeScript script (a load generator) under tsx on one core. */
export function tsxOnCore(core: number, script: string, args: string[]): string[] {
  return ['-c', String(core), process.execPath, '--import', 'tsx', script, ...args];
}

/** `taskset` arguments for the appliance in full DHCP mode on br0, pinned to core 0, HTTP on `server`:8080, no TFTP, JSON logs. */
export function fullApplianceOnCore0(o: { server: string; range: string; dataPath: string; logLevel: string; extra?: string[] }): string[] {
  const flags = ['--iface', 'br0', '--dhcp', 'full', '--dhcp-range', o.range, '--address', `${o.server}:8080`, '--tftp-address', 'off'];
  const paths = ['--data-path', o.dataPath, '--firmware-path', path.join(PROJECT_ROOT, 'firmware')];
  return ['-c', '0', process.execPath, ...applianceArgs([...flags, ...paths, '--log-level', o.logLevel, '--log-format', 'json', ...(o.extra ?? [])])];
}

/** The appliance's flags in ProxyDHCP mode as the proxy benchmarks run it (before applianceArgs or readServeOptions): JSON logs at info, or warn with logs off. */
export function proxyApplianceFlags(o: { iface: string; address: string; tftp?: string; dataPath: string; logs: string | undefined }): string[] {
  return [
    ...['--iface', o.iface, '--dhcp', 'proxy', '--address', o.address],
    ...(o.tftp ? ['--tftp-address', o.tftp] : []),
    ...['--data-path', o.dataPath, '--firmware-path', path.join(PROJECT_ROOT, 'firmware')],
    ...['--log-format', 'json', '--log-level', o.logs === 'off' ? 'warn' : 'info'],
  ];
}

/** dnsmasq.conf for full DHCP on br0 as the full-mode benchmarks run it: its lease file on, no ICMP probe, authoritative, logging to `dir`. */
export function fullDnsmasqConf(o: { range: readonly [string, string]; dir: string; leaseMax: number; quiet: boolean }): string {
  const lines = ['interface=br0', 'bind-interfaces', 'port=0', 'user=root', `dhcp-range=${o.range[0]},${o.range[1]},255.255.0.0,1h`];
  lines.push(`dhcp-leasefile=${path.join(o.dir, 'dnsmasq.leases')}`, `dhcp-lease-max=${o.leaseMax}`, 'no-ping', 'dhcp-authoritative');
  if (o.quiet) lines.push('quiet-dhcp');
  lines.push(`log-facility=${path.join(o.dir, 'dnsmasq.log')}`, 'pid-file=');
  return `${lines.join('\n')}\n`;
}

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
  const { user, sys } = cpuSplitMs(pid);
  return user + sys;
}

/** user and sys CPU of a process in ms, apart: the kernel's share is the socket path (and, on a veth, the delivery). */
export function cpuSplitMs(pid: number): { user: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

/**
 * user+sys CPU in ms of each thread of a process, summed by thread name (main, libuv-worker,
 * V8's GC helpers): says whether a server's CPU goes to its JavaScript or to the threads around it.
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const key = tid === String(pid) ? 'main' : name.replace(/[0-9]+$/, '');
      out[key] = (out[key] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** What each thread name spent between two threadCpuMs readings. */
export function threadCpuDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

export function ratio(a: number, b: number): number {
  return +(a / b).toFixed(2);
}
