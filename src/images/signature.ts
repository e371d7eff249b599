import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import * as openpgp from 'openpgp';
import type { Keyring } from './keyring.ts';

/** Detached signatures come binary (`gpg --detach-sign`, Flatcar and Fedora CoreOS) or armored; both are taken. */
async function readDetached(bytes: Uint8Array): Promise<openpgp.Signature> {
  const text = Buffer.from(bytes.subarray(0, 64)).toString('latin1');
  return text.includes('-----BEGIN PGP SIGNATURE-----') ? openpgp.readSignature({ armoredSignature: Buffer.from(bytes).toString('utf8') }) : openpgp.readSignature({ binarySignature: bytes });
}

/**
 * Checks that `file` (a path, or bytes already in memory) is what `signature` (a detached OpenPGP signature) signed, by a key of
 * `keyring`, and returns the signing key's id (`label` names the file in errors). The file is streamed (an initrd is hundreds of
 * MB). A signature by a key the keyring lacks, or over other bytes, throws naming the key id.
 */
export async function verifyDetached(file: string | Uint8Array, signature: Uint8Array, keyring: Keyring, label = typeof file === 'string' ? file : 'data'): Promise<string> {
  let sig: openpgp.Signature;
  try {
    sig = await readDetached(signature);
  } catch (err) {
    throw new Error(`the signature of ${label} is not an OpenPGP signature (${(err as Error).message})`);
  }
  const issuers = sig.getSigningKeyIDs().map((id) => id.toHex().toUpperCase());
  const by = issuers.join(', ') || 'an unnamed key';
  const binary = typeof file === 'string' ? (Readable.toWeb(createReadStream(file, { highWaterMark: 1 << 20 })) as ReadableStream<Uint8Array>) : file;
  const message = await openpgp.createMessage({ binary });
  const result = await openpgp.verify({ message, signature: sig, verificationKeys: keyring.keys, format: 'binary', expectSigned: false });
  // The verdict is only known once every byte has gone through.
  if (typeof file === 'string') {
    const reader = (result.data as ReadableStream<Uint8Array>).getReader();
    while (!(await reader.read()).done) {}
  }
  const verdicts = await Promise.allSettled(result.signatures.map((s) => s.verified));
  const good = verdicts.findIndex((v) => v.status === 'fulfilled' && v.value);
  if (good >= 0) return result.signatures[good]!.keyID.toHex().toUpperCase();
  const why = verdicts.map((v) => (v.status === 'rejected' ? (v.reason as Error).message : 'not verified')).join('; ');
  const known = /could not find signing key/i.test(why);
  throw new Error(
    known
      ? `${label}: signed by key ${by}, which ${keyring.source} does not hold (or holds no longer valid): cannot verify it`
      : `${label}: BAD signature by key ${by} (checked with ${keyring.source}): ${why}`,
  );
}
