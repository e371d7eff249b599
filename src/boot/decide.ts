/**
 * What to hand a booting client. Pure: the client facts and the settings in, a target
 * out, with the reason in words for the log line. No I/O, no clock, so every branch is
 * a row in a table test.
 */
import type { ArchName, ClientInfo } from './client.ts';

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

export type BootTarget =
  /** Firmware that is not iPXE yet: load an iPXE build over TFTP. */
  | { action: 'tftp'; file: string; reason: string }
  /** iPXE itself: fetch the boot script over HTTP. */
  | { action: 'ipxe-script'; url: string; reason: string }
  /** UEFI HTTP Boot: fetch an EFI iPXE build over HTTP (option 60 must say HTTPClient). */
  | { action: 'http-boot'; url: string; file: string; reason: string }
  | { action: 'ignore'; code: IgnoreReason; reason: string };

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

export function resolveBootTarget(client: ClientInfo, settings: BootSettings): BootTarget {
  if (client.arch === undefined) {
    return { action: 'ignore', code: 'not-pxe', reason: 'no option 93 (client architecture): not a PXE client' };
  }
  if (client.ipxe) {
    return { action: 'ipxe-script', url: `${settings.baseUrl}/boot.ipxe`, reason: 'iPXE (option 77 or 175) gets the boot script' };
  }
  const file = firmwareFor(client.archName, settings.efiFirmware);
  if (file === undefined) {
    return { action: 'ignore', code: 'unsupported-arch', reason: `architecture ${client.arch} (option 93) has no iPXE build we know of` };
  }
  if (!settings.firmware.has(file)) {
    const why = settings.firmware.explain?.(file) ?? `${file} is not in the firmware catalog`;
    return { action: 'ignore', code: 'no-firmware', reason: `architecture ${client.arch} (${client.archName}) needs ${file}: ${why}` };
  }
  if (client.httpBoot) {
    return { action: 'http-boot', url: `${settings.baseUrl}/firmware/${file}`, file, reason: `UEFI HTTP Boot (${client.archName}) gets ${file} over HTTP` };
  }
  return { action: 'tftp', file, reason: `${client.archName} PXE (arch ${client.arch}) gets ${file} over TFTP` };
}
