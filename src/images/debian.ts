import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BootConfig } from '../store/boot-config.ts';
import { hashFile } from './digests.ts';
import { placeFile } from './place-file.ts';
import type { FetchedFile, Reporter } from './progress.ts';
import { imagesUrl } from './release.ts';

const run = promisify(execFile);

/** The Debian installer's netboot kernel and initrd come from Debian's own package, which apt verifies against the signed archive. */
export const DEBIAN_ARCHES = ['amd64', 'arm64'] as const;
export type DebianArch = (typeof DEBIAN_ARCHES)[number];

export interface DebianOptions {
  release: string;
  arch: DebianArch;
  imagesPath: string;
  /** Where the .deb is kept for the next time (default images/.cache, which /images does not serve). */
  cache: string;
}

/**
 * The .deb of `pkg`, from `cache` when apt's candidate version is already there, else by
 * `apt-get download` (which checks it against the signed Release files), kept in `cache`.
 */
async function debianPackage(pkg: string, cache: string, reporter: Reporter): Promise<string> {
  const { stdout } = await run('apt-cache', ['policy', pkg], { encoding: 'utf8' });
  const version = /Candidate:\s*(\S+)/.exec(stdout)?.[1];
  if (!version || version === '(none)') throw new Error(`apt knows no package ${pkg} (apt-get update, or is this Debian 12?)`);
  await mkdir(cache, { recursive: true });
  const fileVersion = version.replace(/^\d+:/, '').replaceAll(':', '%3a');
  const name = (await readdir(cache)).find((f) => f.startsWith(`${pkg}_${fileVersion}_`) && f.endsWith('.deb'));
  if (name) {
    reporter.note({ package: pkg, version, cached: path.join(cache, name) });
    return path.join(cache, name);
  }
  reporter.note({ package: pkg, version, downloading: true });
  const dir = await mkdtemp(path.join(cache, '.download-'));
  try {
    await run('apt-get', ['download', '-q', `${pkg}=${version}`], { cwd: dir, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    const deb = (await readdir(dir)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg}=${version} left no .deb`);
    await rename(path.join(dir, deb), path.join(cache, deb));
    return path.join(cache, deb);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Unpacks the package and puts linux and initrd.gz under images/debian/ (images/debian-<arch>/ for others). */
export async function fetchDebian(opts: DebianOptions, reporter: Reporter): Promise<{ files: FetchedFile[]; boot: BootConfig }> {
  const pkg = `debian-installer-${opts.release}-netboot-${opts.arch}`;
  const deb = await debianPackage(pkg, opts.cache, reporter);
  const unpacked = await mkdtemp(path.join(tmpdir(), 'bca-images-'));
  try {
    await run('dpkg-deb', ['-x', deb, unpacked]);
    const base = path.join(unpacked, 'usr/lib/debian-installer/images', opts.release, opts.arch, 'text/debian-installer', opts.arch);
    const dest = path.join(opts.imagesPath, opts.arch === 'amd64' ? 'debian' : `debian-${opts.arch}`);
    const sources = ['linux', 'initrd.gz'].map((name) => path.join(base, name));
    for (const from of sources) {
      try {
        await stat(from);
      } catch {
        throw new Error(`${pkg} has no ${path.relative(unpacked, from)}`);
      }
    }
    const files: FetchedFile[] = [];
    for (const from of sources) {
      const to = path.join(dest, path.basename(from));
      await placeFile(from, to, { keepSource: true });
      const got: FetchedFile = { file: to, bytes: (await stat(to)).size, sha256: (await hashFile(to)).sha256 };
      files.push(got);
      reporter.fetched(got);
    }
    const boot: BootConfig = {
      kernel: imagesUrl(opts.imagesPath, files[0]!.file),
      initrd: [imagesUrl(opts.imagesPath, files[1]!.file)],
      cmdline: { console: opts.arch === 'amd64' ? 'ttyS0,115200n8' : 'ttyAMA0', priority: 'critical' },
    };
    return { files, boot };
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
}
