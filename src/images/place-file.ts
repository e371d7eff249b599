import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Puts `from` at `to` so that /images never serves a half-written file: renamed into place
 * (atomic) when both lie on one file system; otherwise, or when `from` must stay (a file
 * unpacked from a package), copied first to a dot-name beside `to` (/images and TFTP refuse
 * dot-files) and that renamed over the real name.
 */
export async function placeFile(from: string, to: string, opts: { keepSource?: boolean } = {}): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  if (!opts.keepSource) {
    try {
      await rename(from, to);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    }
  }
  const partial = path.join(path.dirname(to), `.${path.basename(to)}.partial`);
  try {
    await copyFile(from, partial);
    await rename(partial, to);
    if (!opts.keepSource) await rm(from, { force: true });
  } finally {
    await rm(partial, { force: true });
  }
}
