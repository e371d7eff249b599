import path from 'node:path';
import { digestsEntry } from './digests.ts';
import { fetchSmall } from './download.ts';
import type { Keyring } from './keyring.ts';
import type { Reporter } from './progress.ts';
import { DEFAULT_IGNITION_URL, imagesUrl, joinUrl, type Release } from './release.ts';
import { verifyDetached } from './signature.ts';

export const FLATCAR_CHANNELS = ['stable', 'beta', 'alpha'] as const;
export const FLATCAR_ARCHES = ['amd64', 'arm64'] as const;
export type FlatcarChannel = (typeof FLATCAR_CHANNELS)[number];
export type FlatcarArch = (typeof FLATCAR_ARCHES)[number];

/** The PXE pair Flatcar publishes in each release folder, each with `.sig` and `.DIGESTS` beside it. */
export const FLATCAR_KERNEL = 'flatcar_production_pxe.vmlinuz';
export const FLATCAR_INITRD = 'flatcar_production_pxe_image.cpio.gz';

export interface FlatcarOptions {
  channel: FlatcarChannel;
  /** A release number, or `current` (the channel's newest, read from its signed version.txt). */
  version: string;
  arch: FlatcarArch;
  /** Replaces `https://<channel>.release.flatcar-linux.net`; the same `<arch>-usr/<version>/` tree below it. */
  mirror?: string | undefined;
  imagesPath: string;
  ignitionUrl?: string | undefined;
}

const VERSION = /^\d+\.\d+\.\d+$/;

export function flatcarBase(channel: FlatcarChannel, mirror?: string): string {
  return mirror ?? `https://${channel}.release.flatcar-linux.net`;
}

/** FLATCAR_VERSION from a release's version.txt (shell `KEY=value` lines). */
export function versionFromVersionTxt(text: string): string | undefined {
  const v = /^FLATCAR_VERSION=([^\s]+)\s*$/m.exec(text)?.[1];
  return v && VERSION.test(v) ? v : undefined;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

/**
 * Works out a Flatcar release: which version (`current` resolved through version.txt, whose
 * signature is checked before its number is believed), and for the kernel and initrd their
 * URL, `.sig` and the SHA-512 their DIGESTS give. Files go to images/flatcar/<version>/ (amd64)
 * or images/flatcar-arm64/<version>/, as matchbox's assets/flatcar/<version>/.
 */
export async function flatcarRelease(opts: FlatcarOptions, keyring: Keyring, reporter: Reporter): Promise<Release> {
  const base = flatcarBase(opts.channel, opts.mirror);
  const dir = (version: string) => joinUrl(base, `${opts.arch}-usr/${version}`);
  let version = opts.version;
  const versionUrl = joinUrl(dir(version), 'version.txt');
  const [versionTxt, versionSig] = await Promise.all([fetchSmall(versionUrl, 'version.txt'), fetchSmall(`${versionUrl}.sig`, 'signature')]);
  await verifyDetached(versionTxt, versionSig, keyring, versionUrl);
  const named = versionFromVersionTxt(text(versionTxt));
  if (!named) throw new Error(`${versionUrl} names no FLATCAR_VERSION=<n.n.n>`);
  if (version === 'current') version = named;
  else if (named !== version) throw new Error(`${versionUrl} says FLATCAR_VERSION=${named}, not ${version}`);
  reporter.note({ os: 'flatcar', channel: opts.channel, arch: opts.arch, version, from: base });
  // From here on the numbered folder, not `current`: a release published mid-run cannot mix into this one.
  const folder = dir(version);
  const destDir = path.join(opts.imagesPath, opts.arch === 'amd64' ? 'flatcar' : `flatcar-${opts.arch}`, version);
  const artifacts = await Promise.all(
    [FLATCAR_KERNEL, FLATCAR_INITRD].map(async (name) => {
      const url = joinUrl(folder, name);
      const digests = text(await fetchSmall(`${url}.DIGESTS`, 'DIGESTS file'));
      const checksum = digestsEntry(digests, name);
      if (!checksum) throw new Error(`${url}.DIGESTS gives no SHA512 HASH for ${name}`);
      return { url, signatureUrl: `${url}.sig`, checksum, dest: path.join(destDir, name), keyring };
    }),
  );
  return {
    describe: { os: 'flatcar', channel: opts.channel, version, arch: opts.arch },
    artifacts,
    boot: {
      kernel: imagesUrl(opts.imagesPath, artifacts[0]!.dest),
      initrd: [imagesUrl(opts.imagesPath, artifacts[1]!.dest)],
      // As matchbox's examples/profiles/flatcar.json (initrd= is added for UEFI by the renderer).
      cmdline: { 'flatcar.first_boot': 'yes', 'flatcar.config.url': opts.ignitionUrl ?? DEFAULT_IGNITION_URL },
    },
  };
}
