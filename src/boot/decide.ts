/**
 * What to hand a booting client. Pure: the client facts, what the store knows of the
 * machine and the settings in, a target out, with the reason in words for the log line.
 * No I/O, no clock, no packets, so every branch is a row in a table test.
 */
import type { ArchName, ClientInfo } from './client.ts';
import type { MachineMatch } from './machine.ts';

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
  firmware: FirmwareAvailability;
}

/** Bounded set: used as the dhcpIgnored{reason} label. */
export type IgnoreReason = 'not-pxe' | 'unsupported-arch' | 'no-firmware';

/**
 * Each target carries the machine's match, so the reply's log line and timeline say which
 * config the machine will boot (and the next decisions can pick a loader per machine).
 */
export type BootTarget =
  /** Firmware that is not iPXE yet: load an iPXE build over TFTP. */
  | { action: 'tftp'; file: string; reason: string; machine: MachineMatch }
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

/** The EFI iPXE build for a non-x86 platform, named as distributions name it (e.g. ipxe-arm64.efi). */
function platformBuild(efiFirmware: EfiFirmware, platform: 'arm64' | 'arm32'): string {
  return efiFirmware.replace(/\.efi$/, `-${platform}.efi`);
}

/** The firmware file an architecture needs, or undefined when we know of none for it. */
export function firmwareFor(arch: ArchName, efiFirmware: EfiFirmware): string | undefined {
  switch (arch) {
    case 'bios':
      return 'undionly.kpxe';
    case 'efi-ia32':
    case 'efi-x64':
    case 'http-ia32':
    case 'http-x64':
      return efiFirmware;
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
  if (client.ipxe) {
    return { action: 'ipxe-script', url: `${settings.baseUrl}/boot.ipxe`, reason: `iPXE (option 77 or 175) gets the boot script${scriptFor(machine)}${httpsWarning(client, settings)}`, machine };
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
  return { action: 'tftp', file, reason: `${client.archName} PXE (arch ${client.arch}) gets ${file} over TFTP`, machine };
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
