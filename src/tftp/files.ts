/**
 * The appliance's TFTP root: which file a requested name stands for, or why it is refused.
 * Verified firmware is served from the bytes the catalog checksummed; other files are read
 * from under the root, never outside it. This is the resolver tftp/service.ts hands the
 * generic server.
 */
import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FirmwareCatalog } from '../firmware/catalog.ts';
import { ERR } from './packet.ts';
import type { Peer, TftpResolution } from './server.ts';
import { FileSource, MemorySource } from './source.ts';

export interface RootPolicy {
  /** The folder served (the firmware folder). */
  root: string;
  catalog: FirmwareCatalog;
  /**
   * Also serve regular files under the root that SHA256SUMS does not name (GRUB's
   * configs and netboot images, test files). Files it names are only ever served verified.
   */
  serveOtherFiles: boolean;
  /**
   * Kernels and initrds: `images/…` is served from this folder (--images-path), confined to
   * it like the root, so GRUB fetches over TFTP the same files /images serves over HTTP.
   */
  images?: string | undefined;
  /** Verified firmware served as a changed copy (the arm64 GRUB image with our address in its prefix). */
  patched?: ReadonlyMap<string, Buffer> | undefined;
  /** Files made on request (tftp/grub-files.ts); undefined from it means "not mine". */
  generated?: ((rel: string, peer: Peer) => TftpResolution | undefined) | undefined;
}

function refused(name: string, code: number, message: string, reason: string): TftpResolution {
  return { ok: false, name, code, message, reason };
}

/**
 * Turns a requested filename into a path inside the root, or refuses it. A backslash is a
 * path separator, as in dnsmasq: Windows boot managers ask for "\Boot\BCD" and some PXE
 * configs write "pxelinux.cfg\default". A leading separator is stripped (PXE configs often
 * write "/pxelinux.0" meaning the TFTP root, and tftp-hpa's -s and dnsmasq do the same);
 * ".." segments, NUL and control characters, and dot-files are refused outright; symlinks
 * may point within the root but not out of it.
 */
export function normalizeRequest(filename: string): { ok: true; rel: string } | { ok: false; reason: string } {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(filename)) return { ok: false, reason: 'control character or NUL in filename' };
  // Separators are unified first, so "..\x" and "\.hidden" are judged like their "/" forms below.
  const segments = filename
    .replaceAll('\\', '/')
    .replace(/^\/+/, '')
    .split('/')
    .filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) return { ok: false, reason: 'no file named' };
  if (segments.includes('..')) return { ok: false, reason: '".." in filename' };
  if (segments.some((s) => s.startsWith('.'))) return { ok: false, reason: 'hidden file' };
  return { ok: true, rel: segments.join('/') };
}

export async function resolveRequest(filename: string, policy: RootPolicy, peer?: Peer): Promise<TftpResolution> {
  const norm = normalizeRequest(filename);
  if (!norm.ok) return refused(filename, ERR.ACCESS_VIOLATION, 'Access violation', norm.reason);
  const rel = norm.rel;
  const made = peer && policy.generated?.(rel, peer);
  if (made) return made;
  if (policy.images && rel.startsWith('images/')) return openUnder(policy.images, rel.slice('images/'.length), rel);

  if (policy.catalog.isListed(rel)) {
    const fw = policy.catalog.resolve(rel);
    if (!fw) return refused(rel, ERR.FILE_NOT_FOUND, 'File not found (firmware unavailable)', policy.catalog.explain(rel) ?? 'unavailable');
    return { ok: true, name: rel, source: new MemorySource(policy.patched?.get(rel) ?? fw.data) };
  }
  if (!policy.serveOtherFiles) return refused(rel, ERR.FILE_NOT_FOUND, 'File not found', 'not a listed firmware file');

  return openUnder(policy.root, rel, rel, policy.catalog);
}

/** Opens `rel` inside `root` (symlinks may not lead out of it); listed firmware reached by another name is only served verified. */
async function openUnder(root: string, rel: string, name: string, catalog?: FirmwareCatalog): Promise<TftpResolution> {
  let realRoot: string;
  let real: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(path.join(root, rel));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return refused(name, ERR.FILE_NOT_FOUND, 'File not found', 'no such file');
    return refused(name, ERR.ACCESS_VIOLATION, 'Access violation', `cannot resolve: ${code ?? String(err)}`);
  }
  if (!real.startsWith(realRoot + path.sep)) return refused(name, ERR.ACCESS_VIOLATION, 'Access violation', 'symlink leads outside the root');
  // Listed firmware reached through another name (a symlink to ipxe.efi) is still only served verified.
  if (catalog && path.dirname(real) === realRoot && catalog.isListed(path.basename(real))) {
    const fw = catalog.resolve(path.basename(real));
    if (!fw) return refused(name, ERR.FILE_NOT_FOUND, 'File not found (firmware unavailable)', catalog.explain(path.basename(real)) ?? 'unavailable');
    return { ok: true, name, source: new MemorySource(fw.data) };
  }
  let handle: FileHandle;
  try {
    // realpath left no symlink in the path; O_NOFOLLOW keeps it that way if one is swapped in now.
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return refused(name, ERR.FILE_NOT_FOUND, 'File not found', 'no such file');
    return refused(name, ERR.ACCESS_VIOLATION, 'Access violation', `cannot open: ${code ?? String(err)}`);
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    return refused(name, ERR.FILE_NOT_FOUND, 'File not found', 'not a regular file');
  }
  return { ok: true, name, source: new FileSource(handle, st.size) };
}
