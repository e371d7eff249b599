import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import type { Logger } from '../log.ts';
import { sharedCopy } from '../util/shared-bytes.ts';

/** Why a firmware file named in SHA256SUMS can or cannot be handed out. */
export type FirmwareStatus = 'ok' | 'missing' | 'bad-checksum' | 'not-a-file' | 'outside-root' | 'unreadable';

export interface FirmwareEntry {
  name: string;
  status: FirmwareStatus;
  /** The digest SHA256SUMS expects, lowercase hex. */
  expected: string;
  /** Set when the file could be read: its size and digest as found on disk. */
  size?: number;
  actual?: string;
}

export interface VerifiedFirmware {
  name: string;
  path: string;
  size: number;
  sha256: string;
  /**
   * The bytes that were verified. Services serve these rather than re-reading the
   * file, so a file changed on disk after start can never reach a client unverified.
   */
  data: Buffer;
}

/** The manifest's file names are plain basenames: anything else could point outside the folder. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const LINE = /^([0-9a-fA-F]{64}) [ *](.+)$/;

export class ManifestError extends Error {}

/** How the files were checked: against SHA256SUMS, against dpkg's own checksums of the package that owns the folder, or not at all. */
export type FirmwareTrust = 'sha256sums' | 'dpkg' | 'none';

/**
 * The firmware folder cannot be trusted at all (no SHA256SUMS, no package owns it) while DHCP or
 * TFTP would hand its files out: refused at start, with what to do, rather than a warning and
 * then machines that silently get nothing.
 */
export class FirmwareTrustError extends Error {}

const run = promisify(execFile);

/**
 * dpkg's checksums (md5, as dpkg keeps them) of the files a Debian package installed in `root`,
 * keyed by the path without its leading "/": /usr/lib/ipxe is trusted as the `ipxe` package
 * installed it. undefined when no package owns the folder.
 */
async function dpkgChecksums(root: string): Promise<{ packages: string[]; md5: Map<string, string> } | undefined> {
  let owners: string;
  try {
    ({ stdout: owners } = await run('dpkg-query', ['-S', root], { encoding: 'utf8', timeout: 10_000 }));
  } catch {
    return undefined;
  }
  const line = owners.split('\n').find((l) => l.endsWith(`: ${root}`));
  if (!line) return undefined;
  const packages = line
    .slice(0, -`: ${root}`.length)
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const md5 = new Map<string, string>();
  for (const pkg of packages) {
    const arch = pkg.includes(':') ? [pkg] : [pkg, ...['amd64', 'arm64', 'all'].map((a) => `${pkg}:${a}`)];
    for (const name of arch) {
      const text = await readFile(`/var/lib/dpkg/info/${name}.md5sums`, 'utf8').catch(() => '');
      for (const l of text.split('\n')) {
        const m = /^([0-9a-f]{32}) {2}(.+)$/.exec(l);
        if (m) md5.set(m[2]!, m[1]!);
      }
    }
  }
  return md5.size ? { packages, md5 } : undefined;
}

/** Parses `sha256sum` output (text or binary mode markers). Throws ManifestError on a line it does not understand. */
export function parseSha256Sums(text: string): { name: string; sha256: string }[] {
  const out: { name: string; sha256: string }[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const m = LINE.exec(line);
    if (!m) throw new ManifestError(`SHA256SUMS line ${i + 1}: expected "<sha256>  <name>", got "${line.slice(0, 80)}"`);
    const name = m[2]!;
    if (!NAME.test(name)) throw new ManifestError(`SHA256SUMS line ${i + 1}: "${name}" is not a plain file name`);
    if (seen.has(name)) throw new ManifestError(`SHA256SUMS line ${i + 1}: "${name}" is listed twice`);
    seen.add(name);
    out.push({ name, sha256: m[1]!.toLowerCase() });
  });
  return out;
}

/**
 * The iPXE builds the appliance may hand out: exactly the files SHA256SUMS names, each
 * verified once at start. A file that is missing or fails its checksum is known by name
 * (so the boot decision can say why it refuses) but never resolves.
 */
export class FirmwareCatalog {
  private readonly verified = new Map<string, VerifiedFirmware>();
  private readonly entries: FirmwareEntry[];

  constructor(
    /** The folder SHA256SUMS lives in (absolute). */
    readonly root: string,
    entries: FirmwareEntry[],
    verified: VerifiedFirmware[] = [],
    /** How the files were checked; 'none' when the folder has neither SHA256SUMS nor a package that owns it. */
    readonly trust: FirmwareTrust = entries.length ? 'sha256sums' : 'none',
  ) {
    this.entries = entries;
    for (const v of verified) this.verified.set(v.name, v);
  }

  /** An empty catalog: every `has` is false. For tests and for running without firmware. */
  static empty(root = ''): FirmwareCatalog {
    return new FirmwareCatalog(root, []);
  }

  /** Reads SHA256SUMS in `firmwarePath` and verifies every file it names; logs what it found when a logger is given. */
  static async load(firmwarePath: string, log?: Logger): Promise<FirmwareCatalog> {
    const root = path.resolve(firmwarePath);
    let catalog: FirmwareCatalog;
    try {
      catalog = await FirmwareCatalog.verify(root);
    } catch (err) {
      // A damaged manifest must not stop DHCP/HTTP from starting; it only means no firmware is trusted.
      log?.error({ err, firmwarePath: root }, `firmware: cannot read ${path.join(root, 'SHA256SUMS')}: ${(err as Error).message}; no firmware will be handed out`);
      // A manifest is there, only damaged: said loudly above, and it is not "nobody vouches for this folder".
      return new FirmwareCatalog(root, [], [], 'sha256sums');
    }
    if (log) catalog.report(log);
    return catalog;
  }

  private static async verify(root: string): Promise<FirmwareCatalog> {
    let manifest: { name: string; sha256: string }[];
    try {
      manifest = parseSha256Sums(await readFile(path.join(root, 'SHA256SUMS'), 'utf8'));
    } catch (err) {
      if (err instanceof ManifestError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return FirmwareCatalog.fromDpkg(root);
      throw err;
    }
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch {
      realRoot = root;
    }
    const entries: FirmwareEntry[] = [];
    const verified: VerifiedFirmware[] = [];
    for (const { name, sha256: expected } of manifest) {
      const file = path.join(root, name);
      const entry: FirmwareEntry = { name, status: 'ok', expected };
      entries.push(entry);
      let real: string;
      try {
        real = await realpath(file);
      } catch (err) {
        entry.status = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
        continue;
      }
      // fetch.sh copies files in; a symlink is only accepted while it stays inside the folder.
      if (path.dirname(real) !== realRoot && !real.startsWith(realRoot + path.sep)) {
        entry.status = 'outside-root';
        continue;
      }
      let data: Buffer;
      try {
        const st = await stat(real);
        if (!st.isFile()) {
          entry.status = 'not-a-file';
          continue;
        }
        data = await readFile(real);
      } catch {
        entry.status = 'unreadable';
        continue;
      }
      const actual = createHash('sha256').update(data).digest('hex');
      entry.size = data.length;
      entry.actual = actual;
      if (actual !== expected) {
        entry.status = 'bad-checksum';
        continue;
      }
      // Shared memory: the TFTP worker engine reads these bytes without a copy per transfer.
      verified.push({ name, path: real, size: data.length, sha256: actual, data: sharedCopy(data) });
    }
    return new FirmwareCatalog(root, entries, verified);
  }

  /**
   * A folder without SHA256SUMS that a Debian package installed (Debian's own /usr/lib/ipxe):
   * each file in it is checked against dpkg's record of that package; files dpkg does not
   * know are left out.
   */
  private static async fromDpkg(root: string): Promise<FirmwareCatalog> {
    const sums = await dpkgChecksums(root);
    if (!sums) return new FirmwareCatalog(root, [], [], 'none');
    const entries: FirmwareEntry[] = [];
    const verified: VerifiedFirmware[] = [];
    for (const name of (await readdir(root).catch(() => [])).sort()) {
      if (!NAME.test(name)) continue;
      let real: string;
      try {
        real = await realpath(path.join(root, name));
        if (!(await stat(real)).isFile()) continue;
      } catch {
        continue;
      }
      // ipxe.efi in /usr/lib/ipxe is a symlink to /boot/ipxe.efi: dpkg knows the file it points to.
      const expected = sums.md5.get(real.replace(/^\/+/, ''));
      if (!expected) continue;
      const data = await readFile(real);
      const md5 = createHash('md5').update(data).digest('hex');
      const sha256 = createHash('sha256').update(data).digest('hex');
      const entry: FirmwareEntry = { name, status: md5 === expected ? 'ok' : 'bad-checksum', expected: `md5:${expected}`, size: data.length, actual: md5 === expected ? sha256 : `md5:${md5}` };
      entries.push(entry);
      if (entry.status === 'ok') verified.push({ name, path: real, size: data.length, sha256, data: sharedCopy(data) });
    }
    return new FirmwareCatalog(root, entries, verified, entries.length ? 'dpkg' : 'none');
  }

  /** True only for a file named in SHA256SUMS, present, and matching its checksum. */
  has(name: string): boolean {
    return this.verified.has(name);
  }

  /** The verified file, or undefined when it is unknown, missing or bad. */
  resolve(name: string): VerifiedFirmware | undefined {
    return this.verified.get(name);
  }

  /** Whether SHA256SUMS names this file at all (verified or not): such a name is never served from anywhere else. */
  isListed(name: string): boolean {
    return this.entries.some((e) => e.name === name);
  }

  /** Every file SHA256SUMS names, with its status, in manifest order. */
  list(): FirmwareEntry[] {
    return this.entries.map((e) => ({ ...e }));
  }

  /** Why `name` is not available, in words fit for a log line; undefined when it is. */
  explain(name: string): string | undefined {
    if (this.verified.has(name)) return undefined;
    const e = this.entries.find((x) => x.name === name);
    if (!e) return `${name} is not listed in ${path.join(this.root, 'SHA256SUMS')}`;
    switch (e.status) {
      case 'missing':
        return `${name} is missing from ${this.root} (run firmware/fetch.sh)`;
      case 'bad-checksum':
        return `${name} fails its checksum (expected ${e.expected}, found ${e.actual}); run firmware/fetch.sh`;
      case 'outside-root':
        return `${name} is a symlink leading outside ${this.root}`;
      case 'not-a-file':
        return `${name} is not a regular file`;
      default:
        return `${name} could not be read`;
    }
  }

  private report(log: Logger): void {
    const ok = this.entries.filter((e) => e.status === 'ok').map((e) => e.name);
    const bad = this.entries.filter((e) => e.status !== 'ok');
    if (this.entries.length === 0) {
      log.warn({ firmwarePath: this.root }, `firmware: no SHA256SUMS in ${this.root}; no firmware will be handed out`);
      return;
    }
    if (this.trust === 'dpkg') log.info({ firmwarePath: this.root }, `firmware: ${this.root} has no SHA256SUMS; its files are checked against dpkg's checksums of the package that installed them`);
    for (const e of bad) {
      log.warn({ firmware: e.name, status: e.status, expected: e.expected, actual: e.actual }, `firmware: ${this.explain(e.name)}; it will not be handed out`);
    }
    log.info(
      { firmwarePath: this.root, found: ok, unavailable: bad.map((e) => e.name) },
      `firmware: found ${ok.length ? ok.join(', ') : 'none'}${bad.length ? `; unavailable: ${bad.map((e) => `${e.name} (${e.status})`).join(', ')}` : ''}`,
    );
  }
}
