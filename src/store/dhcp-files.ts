/**
 * Full DHCP for real sites, declared in the data directory:
 *
 *   <data>/dhcp/hosts/<mac>[.json]       {"ip": "10.1.2.50", "hostname": "node1"}   a fixed address
 *   <data>/dhcp/subnets/<name>[.json]    {"subnet": "10.1.2.0/24", "range": [...], "router", "dns", "leaseTime"}
 *
 * Read, judged and watched here, as the FileStore does for boot configs: a broken file is
 * logged with its path and reason and its last good version keeps serving; a change takes
 * effect within about a second. `judgeSite` is the one judgement of how the files fit
 * together (overlaps, an address taken twice, a host on no network we serve), shared by the
 * running DHCP (src/dhcp/site.ts) and `validate`, so both say the same of every file.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { ReloadLoop } from './reload-loop.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { intToIpv4, ipv4ToInt } from '../net/ipv4.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import { isIgnoredName, MAX_FILE_BYTES } from './data-files.ts';

const ipv4 = z.string().refine((s) => isIPv4(s), 'not an IPv4 address');

/** RFC 1123 host name label: what option 12 carries and a resolver accepts. */
const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

export const FixedHostFileSchema = z
  .object({
    ip: ipv4,
    hostname: z.string().regex(DNS_LABEL, 'must be a DNS label: 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen').optional(),
  })
  .strict();

interface Cidr {
  network: number;
  mask: number;
  prefix: number;
}

const cidr = z.string().transform((text, ctx): Cidr => {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text);
  const prefix = m ? Number(m[2]) : Number.NaN;
  if (!m || !isIPv4(m[1]!) || prefix < 8 || prefix > 30) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a network in CIDR form with a prefix of 8 to 30 (e.g. 10.1.2.0/24)` });
    return z.NEVER;
  }
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const address = ipv4ToInt(m[1]!);
  const network = (address & mask) >>> 0;
  if (network !== address) {
    ctx.addIssue({ code: 'custom', message: `${text} has host bits set; the network is ${intToIpv4(network)}/${prefix}` });
    return z.NEVER;
  }
  return { network, mask, prefix };
});

function inCidr(c: Cidr, ip: string): boolean {
  return (ipv4ToInt(ip) & c.mask) >>> 0 === c.network;
}

function broadcastInt(c: Cidr): number {
  return (c.network | (~c.mask >>> 0)) >>> 0;
}

/** A usable host address of the network: inside it, neither its network nor its broadcast address. */
function hostOf(c: Cidr, ip: string): boolean {
  const n = ipv4ToInt(ip);
  return inCidr(c, ip) && n !== c.network && n !== broadcastInt(c);
}

export const SiteSubnetFileSchema = z
  .object({
    subnet: cidr,
    /** First and last pool address; absent when only fixed hosts live there. */
    range: z.tuple([ipv4, ipv4]).optional(),
    router: ipv4.optional(),
    dns: z.array(ipv4).max(16).default([]),
    /** Seconds; absent: --lease-time. */
    leaseTime: z.number().int().min(60).max(31_536_000).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const where = `${intToIpv4(s.subnet.network)}/${s.subnet.prefix}`;
    if (s.range) {
      const [start, end] = s.range;
      for (const [i, ip] of [start, end].entries()) {
        if (!hostOf(s.subnet, ip)) ctx.addIssue({ code: 'custom', path: ['range', i], message: `${ip} is outside subnet ${where} (or its network or broadcast address)` });
      }
      if (ipv4ToInt(start) > ipv4ToInt(end)) ctx.addIssue({ code: 'custom', path: ['range'], message: `${start} is after ${end}` });
    }
    if (s.router && !hostOf(s.subnet, s.router)) ctx.addIssue({ code: 'custom', path: ['router'], message: `${s.router} is not a host address of subnet ${where}` });
  });

/** A fixed address, by MAC. */
export interface FixedHost {
  mac: Mac;
  ip: string;
  /** Option 12. */
  hostname: string | undefined;
  path: string;
}

/** A relayed subnet we serve, with its pool (when it has a range) and the options its hosts get. */
export interface SiteSubnet {
  /** The file name without .json: names the subnet in logs and its lease file. */
  name: string;
  path: string;
  network: number;
  mask: number;
  /** `10.1.2.0/24`, for logs. */
  cidr: string;
  netmask: string;
  range: { start: string; end: string } | undefined;
  router: string | undefined;
  dns: string[];
  /** Seconds; undefined: --lease-time. */
  leaseTime: number | undefined;
}

/** What full DHCP serves beyond --iface's own pool, once judged. */
export interface SiteConfig {
  hosts: FixedHost[];
  subnets: SiteSubnet[];
}

export const EMPTY_SITE: SiteConfig = { hosts: [], subnets: [] };

/** A file that cannot be used (error), or is used with a caveat (warning). */
export interface SiteProblem {
  path: string;
  reason: string;
  severity: 'error' | 'warning';
  /** A broken file whose last good version keeps serving (the running DHCP only). */
  lastGoodServing?: boolean;
}

/** The --iface segment: its network, and its pool when --dhcp-range gives one. */
export interface OwnSegment {
  network: number;
  mask: number;
  /** `10.77.0.0/24 (--iface eth0)`, for reasons. */
  label: string;
  range?: { start: string; end: string } | undefined;
}

export function ownSegment(iface: string, address: string, netmask: string, range?: { start: string; end: string }): OwnSegment {
  const mask = ipv4ToInt(netmask);
  const network = (ipv4ToInt(address) & mask) >>> 0;
  const prefix = Math.clz32(~mask >>> 0);
  return { network, mask, label: `${intToIpv4(network)}/${prefix} (--iface ${iface})`, range };
}

type DhcpFileKind = 'host' | 'subnet';

/** One entry under <data>/dhcp, named and signed. */
export interface DhcpFile {
  kind: DhcpFileKind;
  path: string;
  /** The MAC (hosts) or the subnet name; undefined when the name is the problem. */
  key: string | undefined;
  nameProblem?: string;
  signature: string;
}

const SUBNET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

function keyOf(kind: DhcpFileKind, name: string): { key: string } | { problem: string } {
  const base = name.toLowerCase().endsWith('.json') ? name.slice(0, -5) : name;
  if (kind === 'host') {
    const mac = parseMac(base);
    return mac ? { key: mac } : { problem: 'file name is not a MAC address (<mac> or <mac>.json, e.g. 52:54:00:12:34:56.json)' };
  }
  if (base === 'iface') return { problem: 'the name "iface" is the --iface segment’s; call this subnet something else' };
  return SUBNET_NAME.test(base) ? { key: base } : { problem: 'a subnet file is named <name>.json, the name of letters, digits, - and _ (it names the lease file leases-<name>.json)' };
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

/** Every entry under <data>/dhcp, sorted by path; the directories seen are returned for watching. */
export async function scanDhcpFiles(dataPath: string): Promise<{ files: DhcpFile[]; dirs: string[] }> {
  const files: DhcpFile[] = [];
  const dirs: string[] = [dataPath];
  const root = path.join(dataPath, 'dhcp');
  let top: string[];
  try {
    top = (await readdir(root)).sort();
  } catch {
    return { files, dirs };
  }
  dirs.push(root);
  const layout = 'dhcp/ holds hosts/ and subnets/ only';
  for (const name of top) {
    if (isIgnoredName(name)) continue;
    const full = path.join(root, name);
    const st = await statOrUndefined(full);
    const kind: DhcpFileKind | undefined = name === 'hosts' ? 'host' : name === 'subnets' ? 'subnet' : undefined;
    if (!kind || !st?.isDirectory()) {
      files.push({ kind: 'host', path: full, key: undefined, nameProblem: `unexpected entry: ${layout}`, signature: 'unexpected' });
      continue;
    }
    dirs.push(full);
    for (const entry of (await readdir(full).catch(() => [])).sort()) {
      if (isIgnoredName(entry)) continue;
      const file = path.join(full, entry);
      const est = await statOrUndefined(file); // follows symlinks, as the boot configs do
      if (!est?.isFile()) {
        files.push({ kind, path: file, key: undefined, nameProblem: est ? 'not a regular file' : 'dangling symlink or unreadable entry', signature: 'special' });
        continue;
      }
      const signature = `${est.dev}:${est.ino}:${est.size}:${est.mtimeMs}:${est.ctimeMs}`;
      const named = keyOf(kind, entry);
      if ('key' in named) files.push({ kind, path: file, key: named.key, signature });
      else files.push({ kind, path: file, key: undefined, nameProblem: named.problem, signature });
    }
  }
  return { files, dirs };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function reasonOf(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}

/** Reads and parses one file; throws an Error whose message is the reason it is unusable. */
export async function readDhcpFile(file: DhcpFile & { key: string }): Promise<FixedHost | SiteSubnet> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file.path);
  } catch (err) {
    throw new Error(`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (bytes.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes).replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
  if (file.kind === 'host') {
    const parsed = FixedHostFileSchema.safeParse(json);
    if (!parsed.success) throw new Error(reasonOf(parsed.error));
    return { mac: file.key as Mac, ip: parsed.data.ip, hostname: parsed.data.hostname, path: file.path };
  }
  const parsed = SiteSubnetFileSchema.safeParse(json);
  if (!parsed.success) throw new Error(reasonOf(parsed.error));
  const s = parsed.data;
  return {
    name: file.key,
    path: file.path,
    network: s.subnet.network,
    mask: s.subnet.mask,
    cidr: `${intToIpv4(s.subnet.network)}/${s.subnet.prefix}`,
    netmask: intToIpv4(s.subnet.mask),
    range: s.range && { start: s.range[0], end: s.range[1] },
    router: s.router,
    dns: s.dns,
    leaseTime: s.leaseTime,
  };
}

/** Code unit order, as the scan lists files: "the first by path" is the same file everywhere. */
function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function overlaps(a: { network: number; mask: number }, b: { network: number; mask: number }): boolean {
  return (a.network & b.mask) >>> 0 === b.network || (b.network & a.mask) >>> 0 === a.network;
}

function inNet(net: { network: number; mask: number }, ip: string): boolean {
  return (ipv4ToInt(ip) & net.mask) >>> 0 === net.network;
}

function inRange(range: { start: string; end: string } | undefined, ip: string): boolean {
  if (!range) return false;
  const n = ipv4ToInt(ip);
  return n >= ipv4ToInt(range.start) && n <= ipv4ToInt(range.end);
}

/**
 * How the files fit together. Subnets in path order: one that overlaps the --iface segment or
 * an earlier one is refused. Hosts in path order: an address already another host's is
 * refused, so is one on no network we serve (the --iface segment, when known, and the
 * accepted subnets) or a network or broadcast address; one inside a pool range is kept with a
 * warning (the pool skips it). What is refused is left out of the result.
 */
export function judgeSite(candidates: SiteConfig, own: OwnSegment | undefined): { site: SiteConfig; problems: SiteProblem[] } {
  const problems: SiteProblem[] = [];
  const subnets: SiteSubnet[] = [];
  for (const s of [...candidates.subnets].sort(byPath)) {
    if (own && overlaps(s, own)) {
      problems.push({ path: s.path, reason: `subnet ${s.cidr} overlaps the ${own.label} segment`, severity: 'error' });
      continue;
    }
    const other = subnets.find((o) => overlaps(o, s));
    if (other) {
      problems.push({ path: s.path, reason: `subnet ${s.cidr} overlaps ${other.cidr} of ${other.path}`, severity: 'error' });
      continue;
    }
    subnets.push(s);
  }
  const hosts: FixedHost[] = [];
  const byIp = new Map<string, FixedHost>();
  for (const h of [...candidates.hosts].sort(byPath)) {
    const taken = byIp.get(h.ip);
    if (taken) {
      problems.push({ path: h.path, reason: `ip ${h.ip} is already ${taken.mac}'s (${taken.path}); an address is fixed for one host only`, severity: 'error' });
      continue;
    }
    const subnet = subnets.find((s) => inNet(s, h.ip));
    const net = subnet ?? (own && inNet(own, h.ip) ? own : undefined);
    if (!net) {
      const where = own ? `every declared subnet and the ${own.label} segment` : 'every declared subnet (the --iface segment was not checked: validate --iface NAME checks it too)';
      problems.push({ path: h.path, reason: `ip ${h.ip} is outside ${where}`, severity: 'error' });
      continue;
    }
    const n = ipv4ToInt(h.ip);
    if (n === net.network || n === (net.network | (~net.mask >>> 0)) >>> 0) {
      problems.push({ path: h.path, reason: `ip ${h.ip} is the network or broadcast address of its subnet`, severity: 'error' });
      continue;
    }
    const range = subnet ? subnet.range : own?.range;
    if (inRange(range, h.ip)) {
      problems.push({
        path: h.path,
        reason: `ip ${h.ip} is inside the pool range ${range!.start}-${range!.end}${subnet ? ` of ${subnet.path}` : ' (--dhcp-range)'}: the pool skips it, but a fixed address is clearer outside the range`,
        severity: 'warning',
      });
    }
    byIp.set(h.ip, h);
    hosts.push(h);
  }
  return { site: { hosts, subnets }, problems };
}

/** What `validate` reports of <data>/dhcp. */
export interface DhcpCheck {
  /** Files under dhcp/hosts, good or not. */
  hostFiles: number;
  hosts: number;
  subnets: number;
  problems: SiteProblem[];
}

/** Judges <data>/dhcp as the running DHCP would: each file on its own, then how they fit together. */
export async function checkDhcpFiles(dataPath: string, own: OwnSegment | undefined): Promise<DhcpCheck> {
  const { files } = await scanDhcpFiles(dataPath);
  const problems: SiteProblem[] = [];
  const candidates: SiteConfig = { hosts: [], subnets: [] };
  const seen = new Map<string, string>();
  for (const file of files) {
    if (file.key === undefined) {
      problems.push({ path: file.path, reason: file.nameProblem ?? 'unusable', severity: 'error' });
      continue;
    }
    const id = `${file.kind}/${file.key}`;
    const first = seen.get(id);
    if (first) {
      problems.push({ path: file.path, reason: `same ${file.kind === 'host' ? `MAC ${file.key}` : `subnet name ${file.key}`} as ${first}; only that file is used`, severity: 'error' });
      continue;
    }
    seen.set(id, file.path);
    try {
      const value = await readDhcpFile(file as DhcpFile & { key: string });
      if (file.kind === 'host') candidates.hosts.push(value as FixedHost);
      else candidates.subnets.push(value as SiteSubnet);
    } catch (err) {
      problems.push({ path: file.path, reason: (err as Error).message, severity: 'error' });
    }
  }
  const judged = judgeSite(candidates, own);
  problems.push(...judged.problems);
  const order = new Map(files.map((f, i) => [f.path, i]));
  problems.sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0));
  const hostFiles = files.filter((f) => f.kind === 'host' && f.signature !== 'unexpected').length;
  return { hostFiles, hosts: judged.site.hosts.length, subnets: judged.site.subnets.length, problems };
}

export interface DhcpSiteFilesOptions {
  log: Logger;
  metrics?: Pick<Metrics, 'storeErrors'> | undefined;
  /** The --iface segment and its pool, for judgeSite. */
  own: OwnSegment;
  /** Safety net behind the directory watchers. */
  pollIntervalMs?: number;
  /** Editors write a file in several syscalls; changes settle this long before a reload. */
  debounceMs?: number;
}

interface Known {
  signature: string;
  outcome: { ok: true; value: FixedHost | SiteSubnet } | { ok: false; reason: string };
}

/**
 * <data>/dhcp as the running DHCP sees it: read at open, then watched (every directory of
 * the layout plus a poll). A broken file keeps its last good version serving (by key: the MAC
 * of a host, the name of a subnet); listeners hear of every reload that changed something.
 */
export class DhcpSiteFiles {
  private known = new Map<string, Known>();
  /** The last good value of each key, for a file that broke since. */
  private lastGood = new Map<string, FixedHost | SiteSubnet>();
  private site: SiteConfig = EMPTY_SITE;
  private problemList: SiteProblem[] = [];
  private reported = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly log: Logger;
  private readonly loop: ReloadLoop;

  constructor(
    readonly dataPath: string,
    private readonly options: DhcpSiteFilesOptions,
  ) {
    this.log = options.log.child({ component: 'dhcp-site' });
    this.loop = new ReloadLoop({ scan: () => this.scanOnce(), log: this.log, pollIntervalMs: options.pollIntervalMs ?? 2000, debounceMs: options.debounceMs ?? 100, what: 'dhcp site' });
  }

  current(): SiteConfig {
    return this.site;
  }

  problems(): SiteProblem[] {
    return [...this.problemList];
  }

  open(): Promise<void> {
    return this.loop.open();
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** Re-reads what changed now; resolves once the new state is current. Concurrent calls coalesce. */
  reload(): Promise<void> {
    return this.loop.reload();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async scanOnce(): Promise<void> {
    const { files, dirs } = await scanDhcpFiles(this.dataPath);
    if (this.loop.closed) return;
    this.loop.watch(dirs);
    let changed = false;
    const next = new Map<string, Known>();
    const problems: SiteProblem[] = [];
    const candidates: SiteConfig = { hosts: [], subnets: [] };
    const keys = new Map<string, string>();
    const lastGood = new Map<string, FixedHost | SiteSubnet>();
    for (const file of files) {
      if (file.key === undefined) {
        problems.push({ path: file.path, reason: file.nameProblem ?? 'unusable', severity: 'error' });
        continue;
      }
      const id = `${file.kind}/${file.key}`;
      const first = keys.get(id);
      if (first) {
        problems.push({ path: file.path, reason: `same ${file.kind === 'host' ? `MAC ${file.key}` : `subnet name ${file.key}`} as ${first}; only that file is used`, severity: 'error' });
        continue;
      }
      keys.set(id, file.path);
      const before = this.known.get(file.path);
      let known = before;
      if (before?.signature !== file.signature) {
        changed = true;
        try {
          known = { signature: file.signature, outcome: { ok: true, value: await readDhcpFile(file as DhcpFile & { key: string }) } };
        } catch (err) {
          known = { signature: file.signature, outcome: { ok: false, reason: (err as Error).message } };
        }
      }
      next.set(file.path, known!);
      const { outcome } = known!;
      const value = outcome.ok ? outcome.value : this.lastGood.get(id);
      if (!outcome.ok) {
        const lastGoodServing = value !== undefined;
        problems.push({ path: file.path, reason: outcome.reason, severity: 'error', lastGoodServing });
        if (known !== before) {
          this.options.metrics?.storeErrors.inc({ kind: 'dhcp' });
          this.log.error(
            { path: file.path, reason: outcome.reason, lastGoodServing },
            `broken dhcp file ${file.path}: ${outcome.reason}${lastGoodServing ? ' (the last good version keeps serving)' : ''}`,
          );
        }
      } else if (known !== before) this.log.info({ path: file.path }, `dhcp file loaded: ${file.path}`);
      if (value === undefined) continue;
      lastGood.set(id, value);
      if (file.kind === 'host') candidates.hosts.push(value as FixedHost);
      else candidates.subnets.push(value as SiteSubnet);
    }
    for (const p of this.known.keys()) {
      if (next.has(p)) continue;
      changed = true;
      this.log.info({ path: p }, `dhcp file removed: ${p}`);
    }
    const judged = judgeSite(candidates, this.options.own);
    problems.push(...judged.problems);
    const reported = new Set<string>();
    for (const p of problems) {
      const id = `${p.path}\0${p.reason}`;
      reported.add(id);
      // File read errors were logged above when read; name, layout and fit problems once until they change.
      if (this.reported.has(id) || p.lastGoodServing !== undefined) continue;
      if (p.severity === 'error') this.options.metrics?.storeErrors.inc({ kind: 'dhcp' });
      const line = { path: p.path, reason: p.reason };
      if (p.severity === 'warning') this.log.warn(line, `${p.path}: ${p.reason}`);
      else this.log.error(line, `ignoring ${p.path}: ${p.reason}`);
    }
    this.reported = reported;
    this.known = next;
    this.lastGood = lastGood;
    this.problemList = problems;
    this.site = judged.site;
    if (!changed) return;
    this.log.info(
      { hosts: judged.site.hosts.length, subnets: judged.site.subnets.map((s) => `${s.name} ${s.cidr}`), problems: problems.length },
      `dhcp site loaded: ${judged.site.hosts.length} fixed host(s), ${judged.site.subnets.length} subnet(s), ${problems.length} problem(s)`,
    );
    for (const listener of this.listeners) listener();
  }
}
