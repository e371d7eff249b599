import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { createReadStream } from 'node:fs';
import { ConfigError } from '../config.ts';
import { goStyleFlags } from '../util/go-flags.ts';
import type { CommandIo } from './validate.ts';

export const IMAGES_USAGE = 'bootcfg-appliance images fetch debian [--release 12] [--arch amd64|arm64] [--images-path DIR] [--cache DIR]';

const run = promisify(execFile);

/** What `images fetch` knows how to bring, and from where: the Debian installer's netboot kernel and initrd from Debian's own package (apt verifies it). */
const DEBIAN_ARCHES = ['amd64', 'arm64'] as const;
type DebianArch = (typeof DEBIAN_ARCHES)[number];

interface Fetched {
  file: string;
  bytes: number;
  sha256: string;
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Puts `from` at `to` so that /images never serves a half-written file: copied to a dot-name
 * beside it (/images refuses dotfiles) and renamed over the real name, which is atomic.
 */
async function install(from: string, to: string): Promise<Fetched> {
  await mkdir(path.dirname(to), { recursive: true });
  const partial = path.join(path.dirname(to), `.${path.basename(to)}.partial`);
  try {
    await copyFile(from, partial);
    await rename(partial, to);
  } finally {
    await rm(partial, { force: true });
  }
  return { file: to, bytes: (await stat(to)).size, sha256: await sha256Of(to) };
}

/**
 * The .deb of `pkg`, from `cache` when apt's candidate version is already there, else by
 * `apt-get download` (which checks it against the signed Release files), kept in `cache`.
 */
async function debianPackage(pkg: string, cache: string, log: (line: object) => void): Promise<string> {
  const { stdout } = await run('apt-cache', ['policy', pkg], { encoding: 'utf8' });
  const version = /Candidate:\s*(\S+)/.exec(stdout)?.[1];
  if (!version || version === '(none)') throw new Error(`apt knows no package ${pkg} (apt-get update, or is this Debian 12?)`);
  await mkdir(cache, { recursive: true });
  const fileVersion = version.replace(/^\d+:/, '').replaceAll(':', '%3a');
  const name = (await readdir(cache)).find((f) => f.startsWith(`${pkg}_${fileVersion}_`) && f.endsWith('.deb'));
  if (name) {
    log({ package: pkg, version, cached: path.join(cache, name) });
    return path.join(cache, name);
  }
  log({ package: pkg, version, downloading: true });
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

async function fetchDebian(opts: { release: string; arch: DebianArch; imagesPath: string; cache: string }, io: CommandIo): Promise<number> {
  const log = (line: object) => io.stderr(`${JSON.stringify(line)}\n`);
  const pkg = `debian-installer-${opts.release}-netboot-${opts.arch}`;
  const deb = await debianPackage(pkg, opts.cache, log);
  const unpacked = await mkdtemp(path.join(tmpdir(), 'bca-images-'));
  try {
    await run('dpkg-deb', ['-x', deb, unpacked]);
    const base = path.join(unpacked, 'usr/lib/debian-installer/images', opts.release, opts.arch, 'text/debian-installer', opts.arch);
    const dest = path.join(opts.imagesPath, opts.arch === 'amd64' ? 'debian' : `debian-${opts.arch}`);
    const files: Fetched[] = [];
    for (const name of ['linux', 'initrd.gz']) {
      const from = path.join(base, name);
      try {
        await stat(from);
      } catch {
        throw new Error(`${pkg} has no ${path.relative(unpacked, from)}`);
      }
      const got = await install(from, path.join(dest, name));
      files.push(got);
      io.stdout(`${JSON.stringify(got)}\n`);
    }
    const rel = (f: string) => `/images/${path.relative(opts.imagesPath, f).split(path.sep).join('/')}`;
    const config = { kernel: rel(files[0]!.file), initrd: [rel(files[1]!.file)], cmdline: { console: opts.arch === 'amd64' ? 'ttyS0,115200n8' : 'ttyAMA0', priority: 'critical' } };
    io.stdout(`boot config that boots it (data/boot/default.json):\n${JSON.stringify(config, null, 2)}\n`);
    return 0;
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
}

/**
 * `images fetch OS`: brings a distribution's netboot kernel and initrd into --images-path,
 * verified by their origin, and prints the boot config that boots them.
 */
export async function imagesCommand(args: string[], io: CommandIo): Promise<number> {
  let parsed: ReturnType<typeof parseImageArgs>;
  try {
    parsed = parseImageArgs(args);
  } catch (err) {
    throw new ConfigError(`images: ${(err as Error).message}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(
      `Usage: ${IMAGES_USAGE}\n\nDownloads the Debian installer's netboot kernel and initrd from Debian's debian-installer-<release>-netboot-<arch>\npackage (verified by apt) into DIR/debian/ (default ./images, env BOOTCFG_IMAGES_PATH).\n`,
    );
    return 0;
  }
  const [verb, os] = positionals;
  if (verb !== 'fetch' || !os) throw new ConfigError(`images: expected "images fetch OS" (${IMAGES_USAGE})`);
  if (os !== 'debian') throw new ConfigError(`images fetch: "${os}" is not one this version fetches (it fetches: debian)`);
  const arch = values.arch ?? 'amd64';
  if (!(DEBIAN_ARCHES as readonly string[]).includes(arch)) throw new ConfigError(`images fetch debian: --arch must be one of ${DEBIAN_ARCHES.join(', ')}`);
  const release = values.release ?? '12';
  if (!/^\d+$/.test(release)) throw new ConfigError('images fetch debian: --release must be a number (12)');
  const imagesPath = path.resolve(values['images-path'] ?? (io.env.BOOTCFG_IMAGES_PATH || './images'));
  const cache = path.resolve(values.cache ?? (io.env.BOOTCFG_IMAGES_CACHE || path.join(imagesPath, '.cache')));
  try {
    return await fetchDebian({ release, arch: arch as DebianArch, imagesPath, cache }, io);
  } catch (err) {
    io.stderr(`images fetch debian: ${(err as Error).message}\n`);
    return 1;
  }
}

function parseImageArgs(args: string[]) {
  return parseArgs({
    args: goStyleFlags(args),
    options: { release: { type: 'string' }, arch: { type: 'string' }, 'images-path': { type: 'string' }, cache: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: true,
  });
}
