/**
 * argv and BOOTCFG_* strings → one AppConfig, validated here and nowhere else: services take
 * the parts they use and trust them (a full DHCP config always has its range and segment).
 */
import { isIPv4 } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { EFI_FIRMWARE_CHOICES, type EfiFirmware } from './boot/decide.ts';
import type { Loader } from './boot/machine.ts';
import { LOADERS } from './store/boot-config.ts';
import { parseHostPort, type HostPort } from './net/host-port.ts';
import { LOG_LEVELS, type LogSettings } from './log.ts';
import type { Segment } from './net/interface.ts';
import { ipv4ToInt, sameSubnet } from './net/ipv4.ts';

export type { HostPort } from './net/host-port.ts';
export type { Segment } from './net/interface.ts';

export const DHCP_MODES = ['proxy', 'full', 'off'] as const;
export type DhcpMode = (typeof DHCP_MODES)[number];

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

export interface AppConfig {
  /** The one interface DHCP and TFTP serve; undefined makes this the plain bootcfg HTTP service. */
  iface: string | undefined;
  /** The IPv4 advertised to clients (siaddr, option 54, URLs). */
  advertisedAddress: string | undefined;
  http: HostPort;
  baseUrl: string;
  dataPath: string;
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
  /** --ipv6-ra-quench: answer IPv6 router solicitations with router lifetime 0 (full mode only). */
  ipv6RaQuench: boolean;
  /** --stall-after: how long a boot may go without its next step before it counts as stalled. */
  stallAfterMs: number;
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
    'stall-after': z.coerce.number().int().min(5).max(86_400).default(60),
    'ipv6-ra-quench': z.enum(['1', 'true', '0', 'false'], { message: 'expected 1, true, 0 or false' }).optional(),
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

  const ipv6RaQuench = o['ipv6-ra-quench'] === '1' || o['ipv6-ra-quench'] === 'true';
  if (ipv6RaQuench && mode !== 'full') {
    throw new ConfigError(
      `--ipv6-ra-quench: only with --dhcp full (this is --dhcp ${mode}): a router advertisement reaches every host on the segment, and on a segment with another DHCP server it is not ours to send`,
    );
  }

  const advertised = iface?.address;
  const urlHost = advertised ?? (http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host);
  const baseUrl = (o['base-url'] ?? `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${http.port}`).replace(/\/+$/, '');
  const dataPath = path.resolve(o['data-path']);
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
    imagesPath: path.resolve(o['images-path']),
    firmwarePath: path.resolve(o['firmware-path']),
    efiFirmware: o['efi-firmware'],
    uefiLoader: o['uefi-loader'],
    dhcp,
    tftp,
    tftpMaxPerClient: o['tftp-max-per-client'],
    ipv6RaQuench,
    stallAfterMs: o['stall-after'] * 1000,
    log: { level: o['log-level'], format: o['log-format'] ?? (env.isTty ? 'pretty' : 'json') },
  };
}
