import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';

/**
 * The release signing keys kept in the repository (images/keys/, where each came from is in
 * its README), pinned by primary fingerprint here too: a key file swapped or damaged in the
 * tree is refused instead of silently trusted.
 */
export const PINNED_KEYS: Readonly<Record<string, string>> = {
  flatcar: 'F88CFEDEFF29A5B4D9523864E25D9AED0593B34A',
  'fedora-43': 'C6E7F081CF80E13146676E88829B606631645531',
  'fedora-44': '36F612DCF27F7D1A48A835E4DBFCF71C6D9F90A6',
  'fedora-45': '4F50A6114CD5C6976A7F1179655A4B02F577861E',
  'fedora-46': 'D924B10D3E810DABDD8B56B596E7E91491211FCE',
};

/** images/keys/ beside src/ (and beside dist/ in the package): two levels up from this module either way. */
export const KEYS_DIR = fileURLToPath(new URL('../../images/keys/', import.meta.url));

/** The keys a signature may be made by, and where they came from (for the error that names them). */
export interface Keyring {
  keys: openpgp.PublicKey[];
  source: string;
}

async function readKeyFile(file: string): Promise<openpgp.PublicKey[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the signing key ${file}: ${(err as Error).message}`);
  }
  // A file may hold several armored blocks one after another; readKeys takes only the first.
  const blocks = text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${file} holds no armored OpenPGP public key`);
  try {
    return (await Promise.all(blocks.map((armoredKeys) => openpgp.readKeys({ armoredKeys })))).flat();
  } catch (err) {
    throw new Error(`${file} is not a readable OpenPGP public key: ${(err as Error).message}`);
  }
}

/** The repository's key `name` (images/keys/<name>.asc), checked against its pinned fingerprint. */
export async function pinnedKeyring(name: string, keysDir = KEYS_DIR): Promise<Keyring> {
  const pinned = PINNED_KEYS[name];
  const file = `${keysDir.replace(/\/+$/, '')}/${name}.asc`;
  if (!pinned)
    throw new Error(`no signing key "${name}" is kept in ${keysDir} (known: ${Object.keys(PINNED_KEYS).join(', ')}); add it with its fingerprint (images/keys/README.md), or pass --keyring`);
  const keys = await readKeyFile(file);
  const fingerprints = keys.map((k) => k.getFingerprint().toUpperCase());
  if (!fingerprints.includes(pinned)) throw new Error(`${file} is not the pinned key ${pinned} (it holds ${fingerprints.join(', ')})`);
  return { keys: keys.filter((k) => k.getFingerprint().toUpperCase() === pinned), source: file };
}

/** A keyring the operator names (--keyring): a mirror that re-signs with its own key. Trusted as given. */
export async function keyringFile(file: string): Promise<Keyring> {
  return { keys: await readKeyFile(file), source: file };
}
