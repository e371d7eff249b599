/**
 * A copy of `data` in shared memory: posted to a worker thread it is shared, not cloned, so
 * the bytes every transfer of a file sends (verified firmware) are copied once at start
 * instead of once per transfer. Nothing may write to it after; its readers only read.
 */
export function sharedCopy(data: Uint8Array): Buffer {
  const out = Buffer.from(new SharedArrayBuffer(data.byteLength));
  out.set(data);
  return out;
}

export function isShared(data: Uint8Array): boolean {
  return data.buffer instanceof SharedArrayBuffer;
}
