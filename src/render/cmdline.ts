import type { Cmdline } from '../store/boot-config.ts';
import { substituteBaseUrl } from './assets.ts';

/**
 * The object form as ordered entries, base URL substituted: sorted by key, a flag (`true`,
 * or `""` as the original bootcfg examples wrote flags) as `true`. Every renderer starts
 * here, so the iPXE line and the Pixiecore JSON cannot disagree about a value.
 */
export function cmdlineEntries(cmdline: Exclude<Cmdline, string>, baseUrl: string): [string, string | true][] {
  return Object.keys(cmdline)
    .sort()
    .map((key) => {
      const value = cmdline[key]!;
      return [key, value === true || value === '' ? true : substituteBaseUrl(value, baseUrl)];
    });
}

/** The kernel command line as text: the string form substituted and trimmed, the object form as `k=v` with flags bare. */
export function renderCmdline(cmdline: Cmdline, baseUrl: string): string {
  if (typeof cmdline === 'string') return substituteBaseUrl(cmdline, baseUrl).trim();
  return cmdlineEntries(cmdline, baseUrl)
    .map(([key, value]) => (value === true ? key : `${key}=${value}`))
    .join(' ');
}

/** Whether the command line already names its initrd (then the UEFI `initrd=` arguments are left to the author). */
export function cmdlineNamesInitrd(cmdline: Cmdline): boolean {
  if (typeof cmdline === 'string') return /(^|\s)initrd=/.test(cmdline);
  return Object.hasOwn(cmdline, 'initrd');
}
