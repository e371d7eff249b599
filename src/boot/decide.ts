/**
 * What to hand a booting client. Pure: the client facts, what the store knows of the
 * machine and the settings in, a target out, with the reason in words for the log line.
 * No I/O, no clock, no packets, so every branch is a row in a table test.
 */
import type { ArchName, ClientInfo } from './client.ts';
import type { Loader, MachineMatch } from './machine.ts';

export const EFI_FIRMWARE_CHOICES = ['ipxe.efi', 'snponly.efi'] as const;
export type EfiFirmware = (typeof EFI_FIRMWARE_CHOICES)[number];

/** What the decision needs to know about firmware: only whether a verified file exists. */
export interface FirmwareAvailability {
  has(name: string): boolean;
  /** Why a file is unavailable, for the reason text; optional. */
  explain?(name: string): string | undefined;
}

export interface BootSettings {
  /** Base URL clients fetch from, without a trailing slash. */
  baseUrl: string;
  /** The x86 EFI iPXE build handed to EFI clients: full drivers or SNP-only. */
  efiFirmware: EfiFirmware;
  /** The loader of x86-64 UEFI PXE machines whose boot config names none (--uefi-loader). */
  uefiLoader: Loader;
  firmware: FirmwareAvailability;
  /** How DHCP answers: beside a site DHCP server (proxy), as the DHCP server (full), or not at all (off). */
  dhcpMode: 'off' | 'proxy' | 'full';
  /** The address TFTP clients are sent to (next-server), for advice in reasons. */
  tftpServer: string | undefined;
  /**
   * The port this appliance serves TFTP on; undefined when it serves none (--tftp-address off).
   * Firmware asks next-server on port 69 only, so a TFTP file is handed out only then.
   */
  tftpPort: number | undefined;
}

/**
 * The GRUB chain of one UEFI platform, as Debian ships it: the NBP, the files it fetches
 * from the same TFTP folder, and the config GRUB reads. On x86-64 the NBP is Microsoft-signed
 * shim, which fetches Debian-signed GRUB under the name it expects (shared/notes/wire.md).
 */
export interface GrubChain {
  nbp: string;
  /** Firmware files the NBP fetches after it, in order. */
  fetches: string[];
  /**
   * The config GRUB reads. Debian's signed image tests for grub/<platform>/grub.cfg first, but
   * `[ -e ]` is always false over TFTP, so both images read grub/grub.cfg (wire.md).
   */
  config: string;
  /**
   * Whether GRUB carries this appliance's address itself. The signed x86-64 image cannot (its
   * prefix is /grub on whichever server the DHCP ACK names), so beside a site DHCP server it
   * asks that server for its config; the arm64 image is built with our address patched in.
   */
  knowsServer: boolean;
}

export const GRUB_CHAINS: Readonly<Partial<Record<ArchName, GrubChain>>> = {
  'efi-x64': { nbp: 'shimx64.efi', fetches: ['grubx64.efi'], config: 'grub/grub.cfg', knowsServer: false },
  'efi-arm64': { nbp: 'grubaa64.efi', fetches: [], config: 'grub/grub.cfg', knowsServer: true },
};

/** Bounded set: used as the dhcpIgnored{reason} label. */
export type IgnoreReason = 'not-pxe' | 'unsupported-arch' | 'no-firmware' | 'no-config' | 'no-tftp';

/**
 * Each target carries the machine's match, so the reply's log line and timeline say which
 * config the machine will boot (and the next decisions can pick a loader per machine).
 */
export type BootTarget =
  /**
   * Firmware that is not iPXE yet: load a boot loader over TFTP, iPXE or the GRUB chain
   * (`chain`: what the NBP fetches after it, for explain and the timeline).
   */
  | { action: 'tftp'; file: string; loader: Loader; chain: string[]; reason: string; machine: MachineMatch }
  /** iPXE itself: fetch the boot script over HTTP. */
  | { action: 'ipxe-script'; url: string; reason: string; machine: MachineMatch }
  /** UEFI HTTP Boot: fetch an EFI iPXE build over HTTP (option 60 must say HTTPClient). */
  | { action: 'http-boot'; url: string; file: string; reason: string; machine: MachineMatch }
  | { action: 'ignore'; code: IgnoreReason; reason: string; machine: MachineMatch };

export type BootAction = BootTarget['action'];
export type BootableTarget = Exclude<BootTarget, { action: 'ignore' }>;

/** What goes into `file`/67: a TFTP file name, or a full URL for iPXE and HTTP Boot. */
export function bootFileOf(target: BootableTarget): string {
  return target.action === 'tftp' ? target.file : target.url;
}

/** The EFI iPXE build for a platform other than x86-64, named as distributions name it (e.g. ipxe-arm64.efi). */
function platformBuild(efiFirmware: EfiFirmware, platform: 'arm64' | 'arm32' | 'ia32'): string {
  return efiFirmware.replace(/\.efi$/, `-${platform}.efi`);
}

/** The firmware file an architecture needs, or undefined when we know of none for it. */
export function firmwareFor(arch: ArchName, efiFirmware: EfiFirmware): string | undefined {
  switch (arch) {
    case 'bios':
      return 'undionly.kpxe';
    case 'efi-x64':
    case 'http-x64':
      return efiFirmware;
    // 32-bit UEFI cannot run the x86-64 build: it needs its own, which Debian does not ship.
    case 'efi-ia32':
    case 'http-ia32':
      return platformBuild(efiFirmware, 'ia32');
    case 'efi-arm64':
    case 'http-arm64':
      return platformBuild(efiFirmware, 'arm64');
    case 'efi-arm32':
    case 'http-arm32':
      return platformBuild(efiFirmware, 'arm32');
    default:
      return undefined;
  }
}

export function resolveBootTarget(client: ClientInfo, settings: BootSettings, machine: MachineMatch): BootTarget {
  if (client.arch === undefined) {
    return { action: 'ignore', code: 'not-pxe', reason: 'no option 93 (client architecture): not a PXE client', machine };
  }
  // On a shared LAN every machine set to network boot asks; one we have nothing for would be
  // chainloaded into iPXE only to get a 404, instead of going on to its next boot option.
  if (settings.dhcpMode === 'proxy' && machine.kind === 'none') {
    return { action: 'ignore', code: 'no-config', reason: 'left alone: no config (no uuid, mac or default boot config matches it; ProxyDHCP answers only machines it has a config for)', machine };
  }
  const target = bootTarget(client, settings, machine);
  if (target.action !== 'tftp' || settings.tftpPort === 69) return target;
  const why = settings.tftpPort === undefined ? 'TFTP is off here (--tftp-address off)' : `TFTP listens on port ${settings.tftpPort} here`;
  return { action: 'ignore', code: 'no-tftp', reason: `${client.archName} PXE (arch ${client.arch}) would get ${target.file} over TFTP, but ${why} and firmware asks on port 69 only`, machine };
}

function bootTarget(client: ClientInfo, settings: BootSettings, machine: MachineMatch): BootTarget {
  if (client.ipxe) {
    return { action: 'ipxe-script', url: `${settings.baseUrl}/boot.ipxe`, reason: `iPXE (option 77 or 175) gets the boot script${scriptFor(machine)}${httpsWarning(client, settings)}`, machine };
  }
  if (!client.httpBoot && GRUB_CHAINS[client.archName]) {
    const choice = loaderFor(client.archName, settings, machine);
    if (choice.loader === 'grub') return grubTarget(client, GRUB_CHAINS[client.archName]!, choice.why, settings, machine);
  }
  const file = firmwareFor(client.archName, settings.efiFirmware);
  if (file === undefined) {
    return { action: 'ignore', code: 'unsupported-arch', reason: `architecture ${client.arch} (option 93) has no iPXE build we know of`, machine };
  }
  if (!settings.firmware.has(file)) {
    const why = settings.firmware.explain?.(file) ?? `${file} is not in the firmware catalog`;
    return { action: 'ignore', code: 'no-firmware', reason: `architecture ${client.arch} (${client.archName}) needs ${file}: ${why}`, machine };
  }
  if (client.httpBoot) {
    return { action: 'http-boot', url: `${settings.baseUrl}/firmware/${file}`, file, reason: `UEFI HTTP Boot (${client.archName}) gets ${file} over HTTP`, machine };
  }
  return { action: 'tftp', file, loader: 'ipxe', chain: [], reason: `${client.archName} PXE (arch ${client.arch}) gets ${file} over TFTP`, machine };
}

/** Which loader a UEFI PXE machine gets, and why in words: its config, else the platform, else --uefi-loader. */
export function loaderFor(arch: ArchName, settings: Pick<BootSettings, 'uefiLoader'>, machine: MachineMatch): { loader: Loader; why: string } {
  if (machine.kind === 'config' && machine.loader) return { loader: machine.loader, why: `${machine.key} says "loader": "${machine.loader}"` };
  // Debian ships no arm64 iPXE: GRUB is what boots these unless a config asks for iPXE.
  if (arch === 'efi-arm64') return { loader: 'grub', why: 'arm64 UEFI boots GRUB unless its config says "loader": "ipxe"' };
  return { loader: settings.uefiLoader, why: `--uefi-loader ${settings.uefiLoader}` };
}

function grubTarget(client: ClientInfo, chain: GrubChain, why: string, settings: BootSettings, machine: MachineMatch): BootTarget {
  const files = [chain.nbp, ...chain.fetches];
  const missing = files.find((f) => !settings.firmware.has(f));
  if (missing) {
    const reason = settings.firmware.explain?.(missing) ?? `${missing} is not in the firmware catalog`;
    return { action: 'ignore', code: 'no-firmware', reason: `${client.archName} PXE (arch ${client.arch}) boots GRUB (${why}) and needs ${missing}: ${reason}`, machine };
  }
  const steps = [...files, chain.config].join(' → ');
  const config =
    machine.kind === 'config'
      ? ` (its grub.cfg boots ${machine.key})`
      : machine.kind === 'broken'
        ? ` (its grub.cfg fails: ${machine.key} is broken)`
        : ' (no boot config matches it yet: its grub.cfg says so and stops)';
  return {
    action: 'tftp',
    file: chain.nbp,
    loader: 'grub',
    chain: [...chain.fetches, chain.config],
    reason: `${client.archName} PXE (arch ${client.arch}) gets ${steps} over TFTP, ${why}${config}${proxyWarning(chain, settings)}`,
    machine,
  };
}

/**
 * GRUB 2.06 takes its TFTP server from the DHCP ACK (wire.md); beside a site DHCP server that
 * ACK is the site's, so an image without our address asks the site's server for grub.cfg.
 * No signed image can be changed to carry it: the site's server has to name us.
 */
function proxyWarning(chain: GrubChain, settings: BootSettings): string {
  if (settings.dhcpMode !== 'proxy' || chain.knowsServer) return '';
  const server = settings.tftpServer ?? '<this host>';
  return `; warning: beside a site DHCP server the signed GRUB reads its config from the next-server of the site's DHCP ACK, not from this proxy: the site's DHCP server must hand out next-server ${server} (BOOTP siaddr; dnsmasq dhcp-boot=${chain.nbp},,${server}; ISC next-server ${server};) to this machine`;
}

/**
 * Debian's iPXE has HTTP but not HTTPS (wire.md): one that says so in option 175 will fail to
 * fetch an https:// script. It still gets the URL (nothing else would boot it); the reason,
 * and so the log line, says why it is about to fail.
 */
function httpsWarning(client: ClientInfo, settings: BootSettings): string {
  if (!client.ipxeFeatures || client.ipxeFeatures.https || !settings.baseUrl.startsWith('https:')) return '';
  return `; warning: this iPXE announces no HTTPS support (option 175), so it cannot fetch ${settings.baseUrl}: give it an http:// --base-url`;
}

/** The part of the reason that says what /ipxe will answer this machine with. */
function scriptFor(machine: MachineMatch): string {
  switch (machine.kind) {
    case 'config':
      return ` (its /ipxe answers from ${machine.key})`;
    case 'broken':
      return ` (its /ipxe answers 500: ${machine.key} is broken)`;
    case 'none':
      return ' (no boot config matches it yet: its /ipxe answers 404)';
  }
}
