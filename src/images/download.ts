import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** What a download reports while it runs: how far it is, for the progress bar or the JSON line. */
export interface DownloadProgress {
  start(total: number | undefined, resumedFrom: number): void;
  advance(bytes: number): void;
}

export interface DownloadResult {
  bytes: number;
  /** Bytes already in the .part file that a Range request continued from (0: from the start). */
  resumedFrom: number;
}

/** Stalled transfers are cut after this long without a byte, so a run ends with an error instead of hanging. */
const IDLE_MS = 60_000;

/** The validator the server gave the partial file, kept beside it so a resume asks for the same file (If-Range). */
interface PartMeta {
  url: string;
  validator?: string;
}

const metaOf = (part: string) => `${part}.meta`;

async function readMeta(part: string): Promise<PartMeta | undefined> {
  try {
    return JSON.parse(await readFile(metaOf(part), 'utf8')) as PartMeta;
  } catch {
    return undefined;
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Removes a partial download and its meta: after a failed check, or when the server's file changed. */
export async function discardPart(part: string): Promise<void> {
  await rm(part, { force: true });
  await rm(metaOf(part), { force: true });
}

/** The transfer broke off (connection closed, reset, stalled): worth another attempt, which resumes. */
export class CutError extends Error {}

/** Fetches a small file (a signature, a DIGESTS file, a stream JSON) whole, into memory. */
export async function fetchSmall(url: string, what: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(IDLE_MS) });
  } catch (err) {
    throw new Error(`cannot fetch ${what} ${url}: ${describeNetError(err)}`);
  }
  if (!res.ok) throw new Error(`cannot fetch ${what} ${url}: HTTP ${res.status} ${res.statusText}`);
  if (Number(res.headers.get('content-length') ?? 0) > 16 * 1024 * 1024) throw new Error(`${what} ${url} is larger than 16 MiB: not a ${what}`);
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (err) {
    throw new Error(`fetching ${what} ${url} failed: ${describeNetError(err)}`);
  }
}

/** undici's errors say "fetch failed" / "terminated"; the cause says what happened on the wire. */
export function describeNetError(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no data for ${IDLE_MS / 1000} s`;
  const cause = e.cause;
  if (cause) return cause.code ? `${cause.code} ${cause.message}` : cause.message;
  return e.message;
}

/**
 * Downloads `url` into `part`, continuing a partial file left by an earlier run with
 * `Range: bytes=<size>-` (and If-Range, so a file changed on the server starts over). The part
 * file is never where /images serves: the caller names it under the cache (a dot-folder).
 * Throws when the connection ends before Content-Length bytes came; the part file stays for
 * the next attempt.
 */
export async function downloadToPart(url: string, part: string, progress: DownloadProgress): Promise<DownloadResult> {
  await mkdir(path.dirname(part), { recursive: true });
  const meta = await readMeta(part);
  let have = meta?.url === url ? await sizeOf(part) : 0;
  if (have === 0) await discardPart(part);
  const headers: Record<string, string> = {};
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    if (meta?.validator) headers['if-range'] = meta.validator;
  }
  const idle = new AbortController();
  let timer = setTimeout(() => idle.abort(), IDLE_MS);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(), IDLE_MS);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: idle.signal });
    } catch (err) {
      throw new CutError(`cannot fetch ${url}: ${describeNetError(err)}`);
    }
    if (res.status === 416 && have > 0) {
      await res.body?.cancel();
      // `bytes */<size>` equal to what we hold: an earlier run got it all (and failed later on another file).
      if (res.headers.get('content-range') === `bytes */${have}`) {
        progress.start(have, have);
        return { bytes: have, resumedFrom: have };
      }
      // The part is not a prefix of what the server has now: start again from nothing.
      await discardPart(part);
      return downloadToPart(url, part, progress);
    }
    if (res.status !== 200 && res.status !== 206) throw new Error(`cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`);
    if (res.status === 206) {
      const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) throw new Error(`${url}: the server answered the range bytes=${have}- with ${res.headers.get('content-range') ?? 'no Content-Range'}`);
    } else {
      have = 0; // 200: the whole file again (no Range support, or it changed)
    }
    const length = res.headers.get('content-length');
    const expected = length === null ? undefined : Number(length);
    const validator = res.headers.get('etag') ?? res.headers.get('last-modified') ?? undefined;
    await writeFile(metaOf(part), JSON.stringify({ url, validator } satisfies PartMeta));
    progress.start(expected === undefined ? undefined : have + expected, have);
    const out = createWriteStream(part, { flags: have > 0 ? 'a' : 'w' });
    let got = 0;
    try {
      if (!res.body) throw new Error('no body');
      for await (const chunk of res.body) {
        touch();
        got += chunk.length;
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        progress.advance(chunk.length);
      }
    } catch (err) {
      const total = expected === undefined ? '' : ` of ${have + expected}`;
      throw new CutError(`the connection for ${url} ended after ${have + got}${total} bytes (${describeNetError(err)}); the part is kept, run again to resume`);
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    if (expected !== undefined && got !== expected) throw new CutError(`the connection for ${url} ended after ${have + got} of ${have + expected} bytes; the part is kept, run again to resume`);
    return { bytes: have + got, resumedFrom: have };
  } finally {
    clearTimeout(timer);
  }
}
