import type { BootConfig } from '../store/boot-config.ts';
import { resolveAssetUrl } from './assets.ts';
import { cmdlineNamesInitrd, renderCmdline } from './cmdline.ts';

/**
 * The chain script every iPXE client is sent to first: it asks iPXE to report who it is.
 * `${mac}` is the booting NIC (not `${net0/mac}`), `hexhyp` survives every URL parser;
 * the relative URL resolves against wherever this script was fetched from. `arch` (iPXE's
 * build architecture: i386, x86_64, arm64) is a label matchbox groups select on, as matchbox's
 * own boot.ipxe sends it.
 */
export const BOOT_SCRIPT = '#!ipxe\nchain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}&serial=${serial}&arch=${buildarch}\n';

/** Names iPXE gives the initrds (`initrd --name`), so the kernel line can point the EFI stub at them. */
export function initrdName(index: number): string {
  return `initrd${index}`;
}

/** The iPXE script and the absolute URLs it names (the timeline checks downloads against them). */
export interface RenderedBoot {
  script: string;
  kernelUrl: string;
  initrdUrls: string[];
}

const renderCache = new WeakMap<BootConfig, { baseUrl: string; rendered: RenderedBoot }>();

/** Configs are immutable once loaded (a reload makes new objects), so each is rendered once per base URL. */
export function renderBoot(config: BootConfig, baseUrl: string): RenderedBoot {
  const cached = renderCache.get(config);
  if (cached?.baseUrl === baseUrl) return cached.rendered;
  const kernelUrl = resolveAssetUrl(config.kernel, baseUrl);
  const initrdUrls = config.initrd.map((ref) => resolveAssetUrl(ref, baseUrl));
  const rendered: RenderedBoot = { script: buildIpxeScript(config, baseUrl, kernelUrl, initrdUrls), kernelUrl, initrdUrls };
  renderCache.set(config, { baseUrl, rendered });
  return rendered;
}

/**
 * The iPXE script for one boot config. The EFI stub only finds initrds named on the
 * kernel line (`initrd=<name>`, shared/notes/wire.md); BIOS kernels ignore the argument,
 * so it is always added rather than guessing the platform.
 */
export function renderIpxeScript(config: BootConfig, baseUrl: string): string {
  return renderBoot(config, baseUrl).script;
}

function buildIpxeScript(config: BootConfig, baseUrl: string, kernelUrl: string, initrdUrls: string[]): string {
  const args = renderCmdline(config.cmdline, baseUrl);
  const initrdArgs = cmdlineNamesInitrd(config.cmdline) ? [] : initrdUrls.map((_, i) => `initrd=${initrdName(i)}`);
  const kernelLine = ['kernel', kernelUrl, ...initrdArgs, args].filter(Boolean).join(' ');
  const lines = ['#!ipxe', kernelLine, ...initrdUrls.map((url, i) => `initrd --name ${initrdName(i)} ${url}`), 'boot'];
  return `${lines.join('\n')}\n`;
}
