import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type Checksum, hashFile } from './digests.ts';
import { CutError, discardPart, downloadToPart, fetchSmall } from './download.ts';
import type { Keyring } from './keyring.ts';
import { placeFile } from './place-file.ts';
import type { FetchedFile, Reporter } from './progress.ts';
import { verifyDetached } from './signature.ts';

/** One file of a release: where it is, its detached signature, the checksum the release gives it, where it goes. */
export interface Artifact {
  url: string;
  signatureUrl: string;
  checksum: Checksum;
  /** Absolute path under --images-path. */
  dest: string;
  keyring: Keyring;
}

export interface FetchOptions {
  imagesPath: string;
  /** Where partial downloads live until verified: never a place /images serves (a dot-folder, or outside). */
  staging: string;
  reporter: Reporter;
  /** Tries per file when the connection breaks; each later try resumes with Range. */
  attempts?: number;
}

interface Verified {
  artifact: Artifact;
  part: string;
  fetched: FetchedFile;
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function downloadWithRetries(a: Artifact, part: string, opts: FetchOptions) {
  const attempts = opts.attempts ?? 3;
  const name = path.basename(a.dest);
  for (let attempt = 1; ; attempt++) {
    const bar = opts.reporter.download(name);
    try {
      return await downloadToPart(a.url, part, bar);
    } catch (err) {
      if (!(err instanceof CutError) || attempt >= attempts) throw err;
      opts.reporter.note({ retry: a.url, attempt: attempt + 1, of: attempts, because: err.message });
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    } finally {
      bar.finish();
    }
  }
}

/** Downloads one artifact to its part file and checks it; a part that fails a check is thrown away. */
async function fetchOne(a: Artifact, opts: FetchOptions): Promise<Verified | FetchedFile> {
  const rel = path.relative(opts.imagesPath, a.dest);
  if (await exists(a.dest)) {
    const have = await hashFile(a.dest, a.checksum.algorithm);
    if (have[a.checksum.algorithm] === a.checksum.hex) return { file: a.dest, bytes: (await stat(a.dest)).size, sha256: have.sha256, url: a.url, checksum: a.checksum.algorithm, present: true };
  }
  const part = `${path.join(opts.staging, rel)}.part`;
  const got = await downloadWithRetries(a, part, opts);
  const signature = await fetchSmall(a.signatureUrl, 'signature');
  const hashes = await hashFile(part, a.checksum.algorithm);
  const actual = hashes[a.checksum.algorithm];
  if (actual !== a.checksum.hex) {
    await discardPart(part);
    throw new Error(`checksum mismatch for ${a.url}: its ${a.checksum.algorithm} is ${actual}, the release says ${a.checksum.hex}`);
  }
  let signedBy: string;
  try {
    signedBy = await verifyDetached(part, signature, a.keyring, a.url);
  } catch (err) {
    await discardPart(part);
    throw err;
  }
  const fetched: FetchedFile = { file: a.dest, bytes: got.bytes, sha256: hashes.sha256, url: a.url, checksum: a.checksum.algorithm, signedBy };
  if (got.resumedFrom > 0) fetched.resumedFrom = got.resumedFrom;
  return { artifact: a, part, fetched };
}

/**
 * Brings every artifact of a release, each checked by checksum AND signature, and only when
 * all have passed renames them into place: a failure leaves nothing new under --images-path
 * (the verified parts wait in the staging folder for the next run).
 */
export async function fetchVerified(artifacts: Artifact[], opts: FetchOptions): Promise<FetchedFile[]> {
  const results: (Verified | FetchedFile)[] = [];
  for (const a of artifacts) results.push(await fetchOne(a, opts));
  const out: FetchedFile[] = [];
  for (const r of results) {
    if ('part' in r) {
      await placeFile(r.part, r.artifact.dest);
      await discardPart(r.part);
      out.push(r.fetched);
    } else {
      out.push(r);
    }
    opts.reporter.fetched(out.at(-1)!);
  }
  return out;
}
