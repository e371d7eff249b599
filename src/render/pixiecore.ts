import type { BootConfig } from '../store/boot-config.ts';
import { resolveAssetUrl, substituteBaseUrl } from './assets.ts';
import { cmdlineEntries } from './cmdline.ts';

/** The Pixiecore API response (danderson/netboot README.api.md): flags are `true` in the object form. */
export interface PixiecoreBoot {
  kernel: string;
  initrd: string[];
  cmdline?: string | Record<string, string | true>;
  message?: string;
}

export function renderPixiecore(config: BootConfig, baseUrl: string): PixiecoreBoot {
  const out: PixiecoreBoot = {
    kernel: resolveAssetUrl(config.kernel, baseUrl),
    initrd: config.initrd.map((ref) => resolveAssetUrl(ref, baseUrl)),
  };
  const { cmdline } = config;
  if (typeof cmdline === 'string') {
    const text = substituteBaseUrl(cmdline, baseUrl).trim();
    if (text) out.cmdline = text;
  } else {
    const entries = cmdlineEntries(cmdline, baseUrl);
    if (entries.length) out.cmdline = Object.fromEntries(entries);
  }
  if (config.message !== undefined) out.message = config.message;
  return out;
}
