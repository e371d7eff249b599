import path from 'node:path';
import { z } from 'zod';
import { fetchSmall } from './download.ts';
import type { Keyring } from './keyring.ts';
import type { Reporter } from './progress.ts';
import { DEFAULT_IGNITION_URL, imagesUrl, joinUrl, type Release } from './release.ts';

export const FCOS_STREAMS = ['stable', 'testing', 'next'] as const;
export const FCOS_ARCHES = ['x86_64', 'aarch64'] as const;
export type FcosStream = (typeof FCOS_STREAMS)[number];
export type FcosArch = (typeof FCOS_ARCHES)[number];

/** Where Fedora CoreOS publishes its stream metadata and builds; --mirror replaces it, same tree below. */
export const FCOS_ORIGIN = 'https://builds.coreos.fedoraproject.org';

const Artifact = z.object({ location: z.string().min(1), signature: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/i, 'sha256 must be 64 hex digits') });

/** The part of a stream JSON (`streams/<stream>.json`, as coreos-installer reads it) the PXE boot needs. */
const StreamSchema = z.object({
  stream: z.string().optional(),
  architectures: z.record(
    z.string(),
    z.object({
      artifacts: z.object({
        metal: z.object({
          release: z.string().regex(/^\d+\.\d{8}\.\d+\.\d+$/, 'release must look like 42.20250803.3.0'),
          formats: z.object({ pxe: z.object({ kernel: Artifact, initramfs: Artifact, rootfs: Artifact }) }),
        }),
      }),
    }),
  ),
});

export interface FcosOptions {
  stream: FcosStream;
  arch: FcosArch;
  mirror?: string | undefined;
  imagesPath: string;
  ignitionUrl?: string | undefined;
}

/** The stream JSON, validated; an answer of another shape is named as such, with the field at fault. */
export async function fetchStream(url: string) {
  const bytes = await fetchSmall(url, 'stream metadata');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new Error(`${url} is not JSON: ${(err as Error).message}`);
  }
  const parsed = StreamSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${url} is not Fedora CoreOS stream metadata: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Works out a Fedora CoreOS release from its stream metadata: the live PXE kernel, initramfs
 * and rootfs, each with its `.sig` and SHA-256; the signing key is Fedora's release key of the
 * build's major version (`keyringFor(major)`). With --mirror the stream JSON and every artifact
 * under the official origin come from the mirror instead. Files go to images/fedora-coreos/
 * under their published names (as matchbox's assets/fedora-coreos/).
 */
export async function fcosRelease(opts: FcosOptions, keyringFor: (major: number) => Promise<Keyring>, reporter: Reporter): Promise<Release> {
  const base = opts.mirror ?? FCOS_ORIGIN;
  const streamUrl = joinUrl(base, `streams/${opts.stream}.json`);
  const stream = await fetchStream(streamUrl);
  const arch = stream.architectures[opts.arch];
  if (!arch) throw new Error(`${streamUrl} has no ${opts.arch} build (it has: ${Object.keys(stream.architectures).join(', ') || 'none'})`);
  const { release, formats } = arch.artifacts.metal;
  const major = Number(release.split('.')[0]);
  const keyring = await keyringFor(major);
  reporter.note({ os: 'fedora-coreos', stream: opts.stream, arch: opts.arch, release, key: keyring.source, from: base });
  const relocate = (location: string) => {
    const absolute = new URL(location, streamUrl).toString();
    return opts.mirror && absolute.startsWith(`${FCOS_ORIGIN}/`) ? joinUrl(opts.mirror, absolute.slice(FCOS_ORIGIN.length)) : absolute;
  };
  const destDir = path.join(opts.imagesPath, 'fedora-coreos');
  const artifacts = (['kernel', 'initramfs', 'rootfs'] as const).map((which) => {
    const a = formats.pxe[which];
    const url = relocate(a.location);
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
    if (!name || name.startsWith('.') || name.includes('/')) throw new Error(`${streamUrl}: ${which} location ${a.location} names no file`);
    return { url, signatureUrl: relocate(a.signature), checksum: { algorithm: 'sha256' as const, hex: a.sha256.toLowerCase() }, dest: path.join(destDir, name), keyring };
  });
  const [kernel, initramfs, rootfs] = artifacts.map((a) => imagesUrl(opts.imagesPath, a.dest));
  return {
    describe: { os: 'fedora-coreos', stream: opts.stream, release, arch: opts.arch },
    artifacts,
    boot: {
      kernel: kernel!,
      initrd: [initramfs!],
      // As matchbox's examples/profiles/fedora-coreos.json: the live system, Ignition on first boot.
      cmdline: {
        'coreos.live.rootfs_url': `{{base_url}}${rootfs!}`,
        'ignition.firstboot': true,
        'ignition.platform.id': 'metal',
        'ignition.config.url': opts.ignitionUrl ?? DEFAULT_IGNITION_URL,
      },
    },
  };
}
