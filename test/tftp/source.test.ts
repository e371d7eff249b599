/**
 * FileSource: the chunked reads with read-ahead a session sends from. A transfer walks the
 * file window by window; every byte must come out as the file has it, whatever the block
 * size does at the chunk boundaries, and a window that reaches back into the previous
 * chunk (a retransmit) must still be in memory.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FileSource } from '../../src/tftp/source.ts';
import { tempDir } from './helpers.ts';

const CHUNK = 4096;

async function sourceOf(body: Buffer): Promise<{ src: FileSource; cleanup: () => Promise<void> }> {
  const tmp = await tempDir();
  const file = path.join(tmp.dir, 'body.bin');
  await writeFile(file, body);
  const src = new FileSource(await open(file, 'r'), body.length, CHUNK);
  return {
    src,
    cleanup: async () => {
      await src.close();
      await tmp.cleanup();
    },
  };
}

/** What Session.pump does: peek a block, load when it is missing, then peek again. */
async function block(src: FileSource, offset: number, length: number): Promise<Buffer> {
  let got = src.peek(offset, length);
  if (!got) {
    await src.load(offset, length);
    got = src.peek(offset, length);
  }
  if (!got) throw new Error(`block at ${offset} not loaded`);
  return Buffer.from(got);
}

for (const blksize of [512, 1468, 8192]) {
  test(`read block by block at blksize ${blksize}, the file comes out intact across chunk boundaries`, async (t) => {
    const body = randomBytes(CHUNK * 7 + 123);
    const { src, cleanup } = await sourceOf(body);
    const parts: Buffer[] = [];
    for (let off = 0; off < body.length; off += blksize) parts.push(await block(src, off, Math.min(blksize, body.length - off)));
    t.true(Buffer.concat(parts).equals(body));
    t.is(src.peek(body.length, blksize)?.length, 0, 'past the end: empty');
    await cleanup();
  });
}

test('a window reaching back into the previous chunk is still served without a new read', async (t) => {
  const body = randomBytes(CHUNK * 4);
  const { src, cleanup } = await sourceOf(body);
  await src.load(0, 512);
  // Give the read-ahead of the second chunk time to land, then step into it.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const across = src.peek(CHUNK - 100, 512);
  t.truthy(across, 'a block across the boundary comes from both chunks');
  t.true(across!.equals(body.subarray(CHUNK - 100, CHUNK + 412)));
  t.truthy(src.peek(CHUNK + 512, 512), 'the second chunk is current');
  const back = src.peek(0, 512);
  t.truthy(back, 'the first chunk is kept while the second is current');
  t.true(back!.equals(body.subarray(0, 512)));
  await cleanup();
});

test('a jump outside what is read ahead reads from there', async (t) => {
  const body = randomBytes(CHUNK * 6);
  const { src, cleanup } = await sourceOf(body);
  t.true((await block(src, CHUNK * 5, 512)).equals(body.subarray(CHUNK * 5, CHUNK * 5 + 512)));
  t.true((await block(src, 0, 512)).equals(body.subarray(0, 512)));
  await cleanup();
});
