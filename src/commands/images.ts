import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config.ts';
import { DEBIAN_ARCHES, type DebianArch, fetchDebian } from '../images/debian.ts';
import { FCOS_ARCHES, FCOS_STREAMS, type FcosArch, type FcosStream, fcosRelease } from '../images/fedora-coreos.ts';
import { FLATCAR_ARCHES, FLATCAR_CHANNELS, type FlatcarArch, type FlatcarChannel, flatcarRelease } from '../images/flatcar.ts';
import { type Keyring, keyringFile, pinnedKeyring } from '../images/keyring.ts';
import { reporterFor } from '../images/progress.ts';
import type { Release } from '../images/release.ts';
import { fetchVerified } from '../images/verified-fetch.ts';
import { BootConfigSchema } from '../store/boot-config.ts';
import { goStyleFlags } from '../util/go-flags.ts';
import type { CommandIo } from './validate.ts';

export const IMAGES_USAGE = `bootcfg-appliance images fetch debian [--release 12] [--arch amd64|arm64]
       bootcfg-appliance images fetch flatcar [--channel stable|beta|alpha] [--version V|current] [--arch amd64|arm64]
       bootcfg-appliance images fetch fedora-coreos [--stream stable|testing|next] [--arch x86_64|aarch64]
         common: [--images-path DIR] [--cache DIR] [--mirror URL] [--keyring FILE] [--ignition-url URL]`;

const HELP = `Usage: ${IMAGES_USAGE}

Brings a netboot kernel and initrd into DIR (default ./images, env BOOTCFG_IMAGES_PATH) and prints
the boot config (data/boot/*.json) that boots them.
  debian          from Debian's debian-installer-<release>-netboot-<arch> package (apt verifies it) → DIR/debian/
  flatcar         from https://<channel>.release.flatcar-linux.net → DIR/flatcar/<version>/
  fedora-coreos   from https://builds.coreos.fedoraproject.org/streams/<stream>.json → DIR/fedora-coreos/
Flatcar and Fedora CoreOS files are checked by checksum AND by the project's OpenPGP signature
(keys in images/keys/, pinned by fingerprint) and appear under their names only once both pass.
  --mirror URL       base URL replacing the release server, same tree below it
  --keyring FILE     trust the keys in FILE instead (a mirror that signs with its own key; off by
                     default; env BOOTCFG_IMAGES_KEYRING)
  --cache DIR        partial downloads and the Debian .deb (default DIR/.cache, never served)
  --ignition-url U   the cmdline's Ignition URL (default matchbox's {{base_url}}/ignition?uuid=…&mac=…)
Cut downloads resume (HTTP Range) on the next try and the next run. On a terminal each download
shows a bar with rate and ETA; otherwise each file is one JSON line on stdout.`;

/** What `images` writes to: CommandIo, and the terminal to draw progress bars on when stderr is one. */
export interface ImagesIo extends CommandIo {
  tty?: NodeJS.WritableStream | undefined;
}

const OSES = ['debian', 'flatcar', 'fedora-coreos'] as const;
/** Which options each OS takes beyond the common ones; another is a usage error, not silently ignored. */
const OWN_OPTIONS: Record<(typeof OSES)[number], readonly string[]> = {
  debian: ['release', 'arch'],
  flatcar: ['channel', 'version', 'arch', 'mirror', 'keyring', 'ignition-url'],
  'fedora-coreos': ['stream', 'arch', 'mirror', 'keyring', 'ignition-url'],
};
const OS_SPECIFIC = ['release', 'arch', 'channel', 'version', 'stream', 'mirror', 'keyring', 'ignition-url'];

function oneOf<T extends string>(os: string, flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  const v = value ?? fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(`images fetch ${os}: --${flag} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function mirrorUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`images fetch: --mirror must be an http(s) URL (got "${value}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`images fetch: --mirror must be an http(s) URL (got "${value}")`);
  return url.toString().replace(/\/+$/, '');
}

/**
 * `images fetch OS`: brings a distribution's netboot kernel and initrd into --images-path,
 * verified by their origin, and prints the boot config that boots them.
 */
export async function imagesCommand(args: string[], io: ImagesIo): Promise<number> {
  let parsed: ReturnType<typeof parseImageArgs>;
  try {
    parsed = parseImageArgs(args);
  } catch (err) {
    throw new ConfigError(`images: ${(err as Error).message}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  const [verb, os, ...extra] = positionals;
  if (verb !== 'fetch' || !os) throw new ConfigError(`images: expected "images fetch OS" (${IMAGES_USAGE})`);
  if (!(OSES as readonly string[]).includes(os)) throw new ConfigError(`images fetch: "${os}" is not one this version fetches (it fetches: ${OSES.join(', ')})`);
  if (extra.length) throw new ConfigError(`images fetch ${os}: unexpected "${extra.join(' ')}"`);
  const own = OWN_OPTIONS[os as (typeof OSES)[number]];
  for (const flag of OS_SPECIFIC) {
    if (values[flag as keyof typeof values] !== undefined && !own.includes(flag))
      throw new ConfigError(`images fetch ${os}: --${flag} is not an option of ${os} (it takes: ${own.map((o) => `--${o}`).join(', ')})`);
  }
  const imagesPath = path.resolve(values['images-path'] ?? (io.env.BOOTCFG_IMAGES_PATH || './images'));
  const cache = path.resolve(values.cache ?? (io.env.BOOTCFG_IMAGES_CACHE || path.join(imagesPath, '.cache')));
  const mirror = mirrorUrl(values.mirror);
  const keyringPath = values.keyring ?? (io.env.BOOTCFG_IMAGES_KEYRING || undefined);
  const ignitionUrl = values['ignition-url'];
  if (ignitionUrl !== undefined && /\s/.test(ignitionUrl)) throw new ConfigError('images fetch: --ignition-url must not contain spaces');
  const reporter = reporterFor({ stdout: io.stdout, stderr: io.stderr, tty: io.tty });
  const keyring = (name: string): Promise<Keyring> => (keyringPath ? keyringFile(keyringPath) : pinnedKeyring(name));

  let work: () => Promise<{ boot: unknown }>;
  if (os === 'debian') {
    const arch = oneOf(os, 'arch', values.arch, DEBIAN_ARCHES, 'amd64') as DebianArch;
    const release = values.release ?? '12';
    if (!/^\d+$/.test(release)) throw new ConfigError('images fetch debian: --release must be a number (12)');
    work = () => fetchDebian({ release, arch, imagesPath, cache }, reporter);
  } else {
    let plan: () => Promise<Release>;
    if (os === 'flatcar') {
      const channel = oneOf(os, 'channel', values.channel, FLATCAR_CHANNELS, 'stable') as FlatcarChannel;
      const arch = oneOf(os, 'arch', values.arch, FLATCAR_ARCHES, 'amd64') as FlatcarArch;
      const version = values.version ?? 'current';
      if (version !== 'current' && !/^\d+\.\d+\.\d+$/.test(version)) throw new ConfigError('images fetch flatcar: --version must be a release number (4459.2.1) or current');
      plan = async () => flatcarRelease({ channel, version, arch, mirror, imagesPath, ignitionUrl }, await keyring('flatcar'), reporter);
    } else {
      const stream = oneOf(os, 'stream', values.stream, FCOS_STREAMS, 'stable') as FcosStream;
      const arch = oneOf(os, 'arch', values.arch, FCOS_ARCHES, 'x86_64') as FcosArch;
      plan = () => fcosRelease({ stream, arch, mirror, imagesPath, ignitionUrl }, (major) => keyring(`fedora-${major}`), reporter);
    }
    work = async () => {
      const release = await plan();
      await fetchVerified(release.artifacts, { imagesPath, staging: path.join(cache, 'partial'), reporter });
      return { boot: release.boot };
    };
  }
  try {
    const { boot } = await work();
    // What is printed must be what the store would read: checked by the same schema.
    const config = BootConfigSchema.parse(boot);
    io.stdout(`boot config that boots it (data/boot/default.json):\n${JSON.stringify(config, null, 2)}\n`);
    return 0;
  } catch (err) {
    io.stderr(`images fetch ${os}: ${(err as Error).message}\n`);
    return 1;
  }
}

function parseImageArgs(args: string[]) {
  const text = { type: 'string' } as const;
  return parseArgs({
    args: goStyleFlags(args),
    options: {
      release: text,
      arch: text,
      channel: text,
      version: text,
      stream: text,
      mirror: text,
      keyring: text,
      'ignition-url': text,
      'images-path': text,
      cache: text,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
}
