/**
 * `doctor`: the usual reasons a machine does not boot, found before it fails: the interface
 * (up, carrier, IPv4), the ports (67, 69, 4011, HTTP) already taken, the firmware catalog, a
 * kernel or initrd the configs name that is not there, and who else answers DHCP and PXE on
 * the segment. It ends with the DHCP mode to run in.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { resolveAssetUrl } from '../render/assets.ts';
import type { AppConfig } from '../config.ts';
import { probeDhcp, type ProbeResult } from '../dhcp/probe.ts';
import { FirmwareCatalog } from '../firmware/catalog.ts';
import { describeLink, linkIsUp, readLink } from '../net/interface.ts';
import type { BootConfig } from '../store/boot-config.ts';
import { judgeDataFiles, readOutcome, scanDataPath } from '../store/data-files.ts';

export type Verdict = 'ok' | 'warn' | 'fail';

export interface Finding {
  check: string;
  verdict: Verdict;
  detail: string;
}

export interface DoctorReport {
  findings: Finding[];
  probe: ProbeResult | undefined;
}

/** Local ports in use, from the kernel's socket tables, with the process holding each when it can be found. */
async function listeners(): Promise<{ udp: Map<number, string>; tcp: Map<number, string> }> {
  const owners = new Map<string, string>();
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) owners.set(m[1]!, `${comm} (pid ${pid})`);
    }
  }
  const table = async (files: string[], listenOnly: boolean) => {
    const out = new Map<number, string>();
    for (const f of files) {
      const text = await readFile(f, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 10) continue;
        // TCP state 0A is LISTEN; a UDP socket bound to the port is "in use" whatever its state.
        if (listenOnly && cols[3] !== '0A') continue;
        const port = Number.parseInt(cols[1]!.split(':')[1] ?? '', 16);
        if (Number.isInteger(port)) out.set(port, owners.get(cols[9]!) ?? 'another process');
      }
    }
    return out;
  };
  return { udp: await table(['/proc/net/udp', '/proc/net/udp6'], false), tcp: await table(['/proc/net/tcp', '/proc/net/tcp6'], true) };
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Whether a URL answers a HEAD within a few seconds (a config naming another server's kernel). */
async function reachable(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(4000) });
    return res.ok ? undefined : `answers ${res.status}`;
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

async function checkImages(config: AppConfig, findings: Finding[]): Promise<void> {
  const { files } = await scanDataPath(config.dataPath);
  const judged = await judgeDataFiles(files, readOutcome);
  for (const p of judged.problems) findings.push({ check: 'data', verdict: 'fail', detail: `${p.path}: ${p.reason}` });
  const base = config.baseUrl.replace(/\/+$/, '');
  let named = 0;
  for (const c of judged.configs) {
    if (!c.outcome.ok) {
      findings.push({ check: 'data', verdict: 'fail', detail: `${c.path}: ${c.outcome.reason}` });
      continue;
    }
    if (c.kind !== 'boot') continue;
    const boot = c.outcome.value as BootConfig;
    for (const ref of [boot.kernel, ...boot.initrd]) {
      named++;
      const url = resolveAssetUrl(ref, base);
      if (url.startsWith(`${base}/images/`)) {
        const file = path.join(config.imagesPath, decodeURIComponent(url.slice(`${base}/images/`.length)));
        if (!(await exists(file)))
          findings.push({ check: 'images', verdict: 'fail', detail: `${c.path} names ${ref}, but ${file} does not exist (bootcfg-appliance images fetch debian brings the example's)` });
      } else if (/^https?:/.test(url)) {
        const problem = await reachable(url);
        if (problem) findings.push({ check: 'images', verdict: 'warn', detail: `${c.path} names ${url}, which ${problem}` });
      }
    }
  }
  if (!findings.some((f) => f.check === 'images' || f.check === 'data'))
    findings.push({ check: 'images', verdict: 'ok', detail: `all ${named} kernel and initrd file(s) the boot configs name are there` });
}

export async function diagnose(config: AppConfig, opts: { probe: boolean; probeWaitMs?: number; hasRange: boolean }): Promise<DoctorReport> {
  const findings: Finding[] = [];
  if (config.iface) {
    const link = readLink(config.iface);
    if (!link) findings.push({ check: 'interface', verdict: 'fail', detail: `${config.iface} does not exist` });
    else if (!link.address) findings.push({ check: 'interface', verdict: 'fail', detail: `${config.iface} has no IPv4 address` });
    else if (!linkIsUp(link)) findings.push({ check: 'interface', verdict: 'warn', detail: `${config.iface} (${link.address}) is ${describeLink(link)}: nothing reaches it until its link comes up` });
    else findings.push({ check: 'interface', verdict: 'ok', detail: `${config.iface} is up with ${link.address}/${link.netmask}` });
  } else findings.push({ check: 'interface', verdict: 'warn', detail: 'no --iface: DHCP and TFTP are off, only HTTP is served' });

  const { udp, tcp } = await listeners();
  const wanted: [string, Map<number, string>, number, boolean][] = [
    ['DHCP', udp, 67, config.dhcp.mode !== 'off'],
    ['PXE boot server', udp, 4011, config.dhcp.mode !== 'off'],
    ['TFTP', udp, config.tftp?.port ?? 69, config.tftp !== undefined],
    ['HTTP', tcp, config.http.port, true],
  ];
  for (const [what, table, port, used] of wanted) {
    if (!used) continue;
    const holder = table.get(port);
    // Another DHCP server bound to a different interface can share 67 (SO_BINDTODEVICE): a warning, not a failure.
    if (holder) findings.push({ check: 'ports', verdict: port === 67 || port === 4011 ? 'warn' : 'fail', detail: `${what} port ${port} is in use by ${holder}` });
  }
  if (!findings.some((f) => f.check === 'ports'))
    findings.push({
      check: 'ports',
      verdict: 'ok',
      detail: `free: ${wanted
        .filter((w) => w[3])
        .map((w) => `${w[0]} ${w[2]}`)
        .join(', ')}`,
    });

  const catalog = await FirmwareCatalog.load(config.firmwarePath);
  const bad = catalog.list().filter((e) => e.status !== 'ok');
  if (catalog.trust === 'none') findings.push({ check: 'firmware', verdict: 'fail', detail: `${catalog.root}: no SHA256SUMS and no package owns it (bash firmware/fetch.sh)` });
  for (const e of bad) findings.push({ check: 'firmware', verdict: 'warn', detail: catalog.explain(e.name) ?? e.name });
  if (catalog.trust !== 'none' && !bad.length) findings.push({ check: 'firmware', verdict: 'ok', detail: `${catalog.list().length} boot loader(s) verified in ${catalog.root}` });

  await checkImages(config, findings);

  let probe: ProbeResult | undefined;
  if (opts.probe && config.iface) {
    try {
      probe = await probeDhcp({ iface: config.iface, waitMs: opts.probeWaitMs ?? 3000, hasRange: opts.hasRange });
      const who = probe.servers.map(
        (s) => `${s.server}${s.yiaddr !== '0.0.0.0' ? ` (offered ${s.yiaddr})` : ' (ProxyDHCP)'}${s.answersPxe ? ` answering PXE${s.bootFile ? ` with ${s.bootFile}` : ''}` : ''}`,
      );
      findings.push({ check: 'dhcp', verdict: probe.advice.warning ? 'warn' : 'ok', detail: probe.servers.length ? `answered by ${who.join(', ')}` : 'no DHCP server answered a DISCOVER within 3 s' });
      if (probe.advice.warning) findings.push({ check: 'dhcp', verdict: 'warn', detail: probe.advice.warning });
    } catch (err) {
      findings.push({ check: 'dhcp', verdict: 'warn', detail: `could not probe the segment: ${(err as Error).message}` });
    }
  }
  return { findings, probe };
}

export function formatReport(report: DoctorReport): string {
  const lines = report.findings.map((f) => `${f.verdict === 'ok' ? 'ok  ' : f.verdict === 'warn' ? 'warn' : 'FAIL'}  ${f.check.padEnd(9)}  ${f.detail}`);
  if (report.probe) lines.push('', `run with: --dhcp ${report.probe.advice.mode}  (${report.probe.advice.why})`);
  return `${lines.join('\n')}\n`;
}
