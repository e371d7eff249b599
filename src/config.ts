/**
 * argv and BOOTCFG_* strings → one AppConfig, validated here and nowhere else: services take
 * the parts they use and trust them (a full DHCP config always has its range and segment).
 */
import { isIPv4 } from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { EFI_FIRMWARE_CHOICES, type EfiFirmware } from './boot/decide.ts';
import type { Loader } from './boot/machine.ts';
import { LOADERS } from './store/boot-config.ts';
import { parseStoreUrl, StoreUrlError } from './store/etcd-connection.ts';
import { parseHostPort, type HostPort } from './net/host-port.ts';
import { LOG_LEVELS, type LogSettings } from './log.ts';
import type { Segment } from './net/interface.ts';
import { ipv4ToInt, sameSubnet } from './net/ipv4.ts';

export type { HostPort } from './net/host-port.ts';
export type { Segment } from './net/interface.ts';

export const DHCP_MODES = ['proxy', 'full', 'off'] as const;
export type DhcpMode = (typeof DHCP_MODES)[number];

export type Ipv6RaQuench = 'on' | 'off' | 'auto';
/** The words --ipv6-ra-quench takes; 1/true and 0/false are what it took as a boolean flag. */
export const IPV6_RA_QUENCH_VALUES = ['on', 'off', 'auto', '1', 'true', '0', 'false'] as const;

export interface AddressRange {
  start: string;
  end: string;
}

/** Resolved in every mode (so `validate`-style checks and the defaults are the same); only full mode uses them. */
interface DhcpShared {
  router: string | undefined;
  dns: string[];
  /** Seconds. */
  leaseTime: number;
  leaseFile: string;
}

export type OffDhcpConfig = DhcpShared & { mode: 'off'; range?: undefined; segment?: undefined };
export type ProxyDhcpConfig = DhcpShared & { mode: 'proxy'; range?: undefined; segment: Segment };
export type FullDhcpConfig = DhcpShared & { mode: 'full'; range: AddressRange; segment: Segment };
export type DhcpConfig = OffDhcpConfig | ProxyDhcpConfig | FullDhcpConfig;

/** Where the configs come from: files under --data-path (the default), or an etcd cluster (--store). */
export type StoreConfig =
  | { kind: 'file' }
  | {
      kind: 'etcd';
      /** `host:port` of each member. */
      endpoints: string[];
      /** Key prefix, e.g. `/bootcfg` (etcd-keys.ts lays out what lives under it). */
      prefix: string;
      /** Absolute paths of the PEM files for TLS; undefined: plain http. */
      ca: string | undefined;
      cert: string | undefined;
      key: string | undefined;
      /** The local copy of the last configs read from etcd, which serves when etcd cannot be reached. */
      mirrorPath: string;
    };

export interface AppConfig {
  /** The one interface DHCP and TFTP serve; undefined makes this the plain bootcfg HTTP service. */
  iface: string | undefined;
  /** The IPv4 advertised to clients (siaddr, option 54, URLs). */
  advertisedAddress: string | undefined;
  http: HostPort;
  baseUrl: string;
  dataPath: string;
  /** --store: the file store at dataPath, or etcd. */
  store: StoreConfig;
  imagesPath: string;
  firmwarePath: string;
  /** The x86 EFI iPXE build handed to EFI PXE and HTTP Boot clients. */
  efiFirmware: EfiFirmware;
  /** --uefi-loader: what x86-64 UEFI PXE machines whose config names no loader get. */
  uefiLoader: Loader;
  dhcp: DhcpConfig;
  tftp: HostPort | undefined;
  /** --tftp-max-per-client: TFTP transfers in flight at once from one IP address. */
  tftpMaxPerClient: number;
  /** --tftp-engine: `worker` sends octet blocks over IPv4 from a thread of their own (tftp/native-engine.ts); `event-loop` through Node's dgram. */
  tftpEngine: 'worker' | 'event-loop';
  /** --http-sendfile: image bodies by sendfile(2) on a thread of their own (http/sendfile-engine.ts), else through buffers. */
  httpSendfile: boolean;
  /**
   * --ipv6-ra-quench: answer IPv6 router solicitations with router lifetime 0. `auto` (full
   * mode's default) only where no IPv6 router advertises; `on` forced; always `off` outside full mode.
   */
  ipv6RaQuench: Ipv6RaQuench;
  /** --stall-after: how long a boot may go without its next step before it counts as stalled. */
  stallAfterMs: number;
  /** --name: this appliance in the fleet view and on the leases it writes to a shared store. */
  name: string;
  /** --fleet-ttl: seconds a stopped appliance's machines stay in the shared fleet view. */
  fleetTtl: number;
  log: LogSettings;
}

function ipv4(what: string) {
  return z.string().refine((s) => isIPv4(s), { message: `${what} must be an IPv4 address` });
}

/** The raw options as the CLI and environment supply them, all strings, before resolution. */
export const RawOptionsSchema = z
  .object({
    iface: z.string().min(1).optional(),
    address: z.string().default('0.0.0.0:8080'),
    'base-url': z.url({ protocol: /^https?$/ }).optional(),
    'data-path': z.string().default('./data'),
    store: z.string().min(1).optional(),
    'store-ca': z.string().min(1).optional(),
    'store-cert': z.string().min(1).optional(),
    'store-key': z.string().min(1).optional(),
    'images-path': z.string().default('./images'),
    'firmware-path': z.string().default('./firmware'),
    'efi-firmware': z.enum(EFI_FIRMWARE_CHOICES).default('ipxe.efi'),
    'uefi-loader': z.enum(LOADERS).default('ipxe'),
    dhcp: z.enum(DHCP_MODES).optional(),
    'dhcp-range': z
      .string()
      .regex(/^[^,]+,[^,]+$/, 'expected START,END')
      .optional(),
    'dhcp-router': ipv4('--dhcp-router').optional(),
    'dhcp-dns': z.string().optional(),
    'lease-time': z.coerce.number().int().min(60).max(31_536_000).default(3600),
    'lease-file': z.string().optional(),
    'tftp-address': z.string().optional(),
    'tftp-max-per-client': z.coerce.number().int().min(1).max(1000).default(8),
    'tftp-engine': z.enum(['worker', 'event-loop']).default('worker'),
    'http-sendfile': z.enum(['on', 'off']).default('on'),
    'stall-after': z.coerce.number().int().min(5).max(86_400).default(60),
    // A key segment in the shared store: no slash, nothing a shell or URL would mangle.
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit')
      .optional(),
    'fleet-ttl': z.coerce.number().int().min(2).max(3600).default(30),
    'ipv6-ra-quench': z.enum(IPV6_RA_QUENCH_VALUES, { message: 'expected on, off or auto (or 1, true, 0, false)' }).optional(),
    'log-level': z.enum(LOG_LEVELS).default('info'),
    'log-format': z.enum(['json', 'pretty']).optional(),
  })
  .strict();
export type RawOptions = z.input<typeof RawOptionsSchema>;

export class ConfigError extends Error {}

export interface ResolveEnvironment {
  /** Looks up --iface; injected so config resolution stays testable without real NICs. */
  lookupInterface: (name: string) => { address: string; netmask: string };
  isTty: boolean;
}

function resolveStore(o: z.output<typeof RawOptionsSchema>, dataPath: string): StoreConfig {
  const tls = (['store-ca', 'store-cert', 'store-key'] as const).filter((f) => o[f] !== undefined);
  if (o.store === undefined || o.store === 'file') {
    if (tls.length) throw new ConfigError(`--${tls[0]}: only meaningful with --store etcd://…`);
    return { kind: 'file' };
  }
  let url: ReturnType<typeof parseStoreUrl>;
  try {
    url = parseStoreUrl(o.store);
  } catch (err) {
    if (err instanceof StoreUrlError) throw new ConfigError(`--store: ${err.message}`);
    throw err;
  }
  if ((o['store-cert'] === undefined) !== (o['store-key'] === undefined)) throw new ConfigError('--store-cert and --store-key go together');
  if (o['store-cert'] !== undefined && o['store-ca'] === undefined) throw new ConfigError('--store-cert: needs --store-ca (the CA that signed the etcd members)');
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(p));
  return { kind: 'etcd', ...url, ca: abs(o['store-ca']), cert: abs(o['store-cert']), key: abs(o['store-key']), mirrorPath: path.join(dataPath, 'state', 'etcd-config') };
}

/** Turns validated raw options into the AppConfig every service reads. Throws ConfigError with a one-line reason. */
export function resolveConfig(raw: RawOptions, env: ResolveEnvironment): AppConfig {
  const parsed = RawOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const flag = issue.path.length ? `--${String(issue.path[0])}` : 'options';
    throw new ConfigError(`${flag}: ${issue.message}`);
  }
  const o = parsed.data;
  const iface = o.iface ? env.lookupInterface(o.iface) : undefined;

  let http: HostPort;
  try {
    http = parseHostPort(o.address);
  } catch (err) {
    throw new ConfigError(`--address: ${(err as Error).message}`);
  }

  const mode: DhcpMode = o.dhcp ?? (iface ? 'proxy' : 'off');
  if (mode !== 'off' && !iface) throw new ConfigError(`--dhcp ${mode}: needs --iface (DHCP only ever answers on one named interface)`);
  const segment: Segment | undefined = iface && o.iface ? { iface: o.iface, address: iface.address, netmask: iface.netmask } : undefined;
  let range: AddressRange | undefined;
  if (o['dhcp-range']) {
    if (mode !== 'full') throw new ConfigError(`--dhcp-range: only meaningful with --dhcp full`);
    const [start, end] = o['dhcp-range'].split(',').map((s) => s.trim()) as [string, string];
    if (!isIPv4(start) || !isIPv4(end)) throw new ConfigError(`--dhcp-range: START and END must be IPv4 addresses, got "${o['dhcp-range']}"`);
    if (ipv4ToInt(start) > ipv4ToInt(end)) throw new ConfigError(`--dhcp-range: START ${start} is after END ${end}`);
    if (iface && !sameSubnet(start, iface.address, iface.netmask)) {
      throw new ConfigError(`--dhcp-range: ${start} is not in ${o.iface}'s subnet ${iface.address}/${iface.netmask}`);
    }
    range = { start, end };
  } else if (mode === 'full') {
    throw new ConfigError(`--dhcp full: needs --dhcp-range START,END`);
  }
  const dns = (o['dhcp-dns'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const d of dns) if (!isIPv4(d)) throw new ConfigError(`--dhcp-dns: "${d}" is not an IPv4 address`);

  let tftp: HostPort | undefined;
  const tftpRaw = o['tftp-address'];
  if (tftpRaw === 'off') tftp = undefined;
  else if (tftpRaw !== undefined) {
    try {
      tftp = parseHostPort(tftpRaw, iface?.address ?? '0.0.0.0');
    } catch (err) {
      throw new ConfigError(`--tftp-address: ${(err as Error).message}`);
    }
  } else if (iface) tftp = { host: iface.address, port: 69 };

  const quenchAsked = o['ipv6-ra-quench'];
  const quenchForced: Ipv6RaQuench | undefined = quenchAsked === undefined || quenchAsked === 'auto' ? undefined : ['on', '1', 'true'].includes(quenchAsked) ? 'on' : 'off';
  // Proxy and off: not our segment to advertise on, so auto means off there.
  const ipv6RaQuench: Ipv6RaQuench = quenchForced ?? (mode === 'full' ? 'auto' : 'off');
  if (ipv6RaQuench === 'on' && mode !== 'full') {
    throw new ConfigError(
      `--ipv6-ra-quench: only with --dhcp full (this is --dhcp ${mode}): a router advertisement reaches every host on the segment, and on a segment with another DHCP server it is not ours to send`,
    );
  }

  const advertised = iface?.address;
  const urlHost = advertised ?? (http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host);
  const baseUrl = (o['base-url'] ?? `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${http.port}`).replace(/\/+$/, '');
  const dataPath = path.resolve(o['data-path']);
  const store = resolveStore(o, dataPath);
  const shared: DhcpShared = {
    router: o['dhcp-router'],
    dns,
    leaseTime: o['lease-time'],
    leaseFile: path.resolve(o['lease-file'] ?? path.join(dataPath, 'state', 'leases.json')),
  };
  // The checks above guarantee a segment for proxy and full, and a range for full.
  const dhcp: DhcpConfig = mode === 'off' ? { mode, ...shared } : mode === 'proxy' ? { mode, segment: segment!, ...shared } : { mode, range: range!, segment: segment!, ...shared };

  return {
    iface: o.iface,
    advertisedAddress: advertised,
    http,
    baseUrl,
    dataPath,
    store,
    imagesPath: path.resolve(o['images-path']),
    firmwarePath: path.resolve(o['firmware-path']),
    efiFirmware: o['efi-firmware'],
    uefiLoader: o['uefi-loader'],
    dhcp,
    tftp,
    tftpMaxPerClient: o['tftp-max-per-client'],
    tftpEngine: o['tftp-engine'],
    httpSendfile: o['http-sendfile'] === 'on',
    ipv6RaQuench,
    stallAfterMs: o['stall-after'] * 1000,
    name: o.name ?? hostname(),
    fleetTtl: o['fleet-ttl'],
    log: { level: o['log-level'], format: o['log-format'] ?? (env.isTty ? 'pretty' : 'json') },
  };
}
