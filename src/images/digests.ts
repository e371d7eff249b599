import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The hashes a release names its files by: Flatcar's DIGESTS give SHA-512, Fedora CoreOS's stream SHA-256. */
export type HashAlgorithm = 'sha256' | 'sha512';

export interface Checksum {
  algorithm: HashAlgorithm;
  hex: string;
}

/**
 * The checksum a Gentoo-style DIGESTS file (Flatcar's `<file>.DIGESTS`: `# MD5 HASH`, `# SHA1
 * HASH`, `# SHA512 HASH` headers, each followed by `<hex>  <name>` lines) gives `name`. Only
 * SHA-512 is taken: MD5 and SHA-1 prove nothing against a mirror that means harm.
 */
export function digestsEntry(text: string, name: string): Checksum | undefined {
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const header = /^#\s*(\S+)\s+HASH$/i.exec(line);
    if (header) {
      section = header[1]!.toLowerCase();
      continue;
    }
    if (section !== 'sha512') continue;
    const entry = /^([0-9a-f]{128})\s+\*?(.+)$/i.exec(line);
    if (entry && entry[2] === name) return { algorithm: 'sha512', hex: entry[1]!.toLowerCase() };
  }
  return undefined;
}

/** The file's SHA-256 (always: it is what the output names a file by) and, when asked for, its SHA-512, in one read. */
export async function hashFile(file: string, also?: HashAlgorithm): Promise<{ sha256: string; sha512?: string }> {
  const sha256 = createHash('sha256');
  const sha512 = also === 'sha512' ? createHash('sha512') : undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    sha256.update(chunk as Buffer);
    sha512?.update(chunk as Buffer);
  }
  return sha512 ? { sha256: sha256.digest('hex'), sha512: sha512.digest('hex') } : { sha256: sha256.digest('hex') };
}
