import path from 'node:path';
import type { BootConfig } from '../store/boot-config.ts';
import type { Artifact } from './verified-fetch.ts';

/** What an OS module works out before anything large is downloaded: the files, and the boot config that boots them. */
export interface Release {
  /** e.g. `flatcar stable 4459.2.1 amd64`, for the log. */
  describe: Record<string, string>;
  artifacts: Artifact[];
  boot: BootConfig;
}

/** The URL /images serves `file` (under --images-path) at, as a boot config names it. */
export function imagesUrl(imagesPath: string, file: string): string {
  return `/images/${path.relative(imagesPath, file).split(path.sep).join('/')}`;
}

/**
 * matchbox's Ignition endpoint for the booting machine (what its Flatcar and Fedora CoreOS
 * profiles point at): served when --data-path holds the matchbox layout; --ignition-url
 * names another.
 */
export const DEFAULT_IGNITION_URL = '{{base_url}}/ignition?uuid=${uuid}&mac=${mac:hexhyp}';

/** Joins a base URL (a release server or --mirror, maybe with a path) and a path under it. */
export function joinUrl(base: string, rel: string): string {
  return `${base.replace(/\/+$/, '')}/${rel.replace(/^\/+/, '')}`;
}
