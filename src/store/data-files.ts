import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseMac } from '../net/mac.ts';
import { parseUuid } from '../net/uuid.ts';
import { parseBootConfig, type BootConfig } from './boot-config.ts';
import { CONFIG_KINDS, type CloudConfig, type ConfigKind, type StoreProblem } from './store.ts';

/**
 * The layout of --data-path and how its files are read, shared by the FileStore and
 * `validate` so both judge a file the same way:
 *
 *   <data>/boot/default[.json]            <data>/cloud/default[.<any ext>]
 *   <data>/boot/uuid/<uuid>[.json]        <data>/cloud/uuid/<uuid>[.<any ext>]
 *   <data>/boot/mac/<mac>[.json]          <data>/cloud/mac/<mac>[.<any ext>]
 *
 * A MAC file name may use any accepted MAC form (colons, dashes, dots, bare hex, any
 * case) and a UUID any case; both are keyed by their canonical form. Dotfiles and
 * editor leftovers are skipped silently: editors create them while saving.
 */

export const MAX_FILE_BYTES = 1024 * 1024;

export type ConfigValue<K extends ConfigKind> = K extends 'boot' ? BootConfig : CloudConfig;

/** A file's identity for change detection without re-reading it. */
export type Signature = string;

export interface DataFile {
  kind: ConfigKind;
  path: string;
  /** `default`, `uuid/<uuid>` or `mac/<mac>`; undefined when the name is the problem. */
  key: string | undefined;
  /** Why the name or type of the entry is wrong (set when key is undefined). */
  nameProblem?: string;
  signature: Signature;
}

export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('~') || /\.(swp|swx|swo|tmp|bak|orig|rej)$/i.test(name) || /^#.*#$/.test(name);
}

function allowedExtension(kind: ConfigKind, ext: string): boolean {
  return kind === 'cloud' || ext.toLowerCase() === '.json';
}

/** The key a file name stands for in a directory (`''` is the kind's top level), or why it stands for none. */
export function keyForName(kind: ConfigKind, dir: '' | 'uuid' | 'mac', name: string): { key: string } | { problem: string } {
  const ext = path.extname(name);
  const candidates = [name];
  if (ext && allowedExtension(kind, ext)) candidates.push(name.slice(0, -ext.length));
  const naming = kind === 'boot' ? '<name> or <name>.json' : '<name> or <name>.<ext>';
  for (const candidate of candidates) {
    if (dir === '' && candidate === 'default') return { key: 'default' };
    if (dir === 'mac') {
      const mac = parseMac(candidate);
      if (mac) return { key: `mac/${mac}` };
    }
    if (dir === 'uuid') {
      const uuid = parseUuid(candidate);
      if (uuid) return { key: `uuid/${uuid}` };
    }
  }
  if (dir === '') return { problem: `unexpected file: ${kind}/ holds default, uuid/ and mac/ only (${naming})` };
  if (dir === 'mac') return { problem: `file name is not a MAC address (${naming}, e.g. 52:54:00:12:34:56${kind === 'boot' ? '.json' : ''})` };
  return { problem: `file name is not a UUID (${naming}, e.g. 1cff2cd8-f00a-42c8-9426-f55e6a1847f6)` };
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

/** Every entry under <data>/{boot,cloud}, named and signed, sorted by path; the directories seen are returned for watching. */
export async function scanDataPath(dataPath: string): Promise<{ files: DataFile[]; dirs: string[]; dataPathExists: boolean }> {
  const files: DataFile[] = [];
  const dirs: string[] = [];
  const root = await statOrUndefined(dataPath);
  if (!root?.isDirectory()) return { files, dirs, dataPathExists: false };
  dirs.push(dataPath);
  // With matchbox's layout beside the seed's, cloud/<name> files other than default are the
  // templates profiles name (cloud_id): the matchbox store reads and judges them.
  const matchboxLayout = (await statOrUndefined(path.join(dataPath, 'profiles')))?.isDirectory() === true;

  const visit = async (kind: ConfigKind, dirPath: string, dir: '' | 'uuid' | 'mac') => {
    let names: string[];
    try {
      names = (await readdir(dirPath)).sort();
    } catch {
      return;
    }
    dirs.push(dirPath);
    for (const name of names) {
      if (isIgnoredName(name)) continue;
      const full = path.join(dirPath, name);
      const st = await statOrUndefined(full); // follows symlinks: mac/<mac> → ../profiles/worker.json is a normal layout
      if (!st) {
        files.push({ kind, path: full, key: undefined, nameProblem: 'dangling symlink or unreadable entry', signature: 'missing' });
        continue;
      }
      if (st.isDirectory()) {
        if (dir === '' && (name === 'uuid' || name === 'mac')) await visit(kind, full, name);
        else files.push({ kind, path: full, key: undefined, nameProblem: `unexpected directory: ${kind}/ holds default, uuid/ and mac/ only`, signature: 'dir' });
        continue;
      }
      if (!st.isFile()) {
        files.push({ kind, path: full, key: undefined, nameProblem: 'not a regular file', signature: 'special' });
        continue;
      }
      const signature = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      const named = keyForName(kind, dir, name);
      if (matchboxLayout && kind === 'cloud' && dir === '' && 'problem' in named) continue;
      if ('key' in named) files.push({ kind, path: full, key: named.key, signature });
      else files.push({ kind, path: full, key: undefined, nameProblem: named.problem, signature });
    }
  };

  for (const kind of CONFIG_KINDS) await visit(kind, path.join(dataPath, kind), '');
  return { files, dirs, dataPathExists: true };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads and parses one data file; throws an Error whose message is the reason it is unusable. */
export async function readDataFile<K extends ConfigKind>(kind: K, filePath: string): Promise<ConfigValue<K>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(filePath);
  } catch (err) {
    throw new Error(`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (bytes.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
  let text: string;
  try {
    text = utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new Error('not UTF-8 text');
  }
  if (kind === 'boot') return parseBootConfig(text) as ConfigValue<K>;
  return { text } as ConfigValue<K>;
}

/** A data file that carries a key. */
export type KeyedFile = DataFile & { key: string };

/** The outcome of reading one file: its value, or why it is unusable. */
export type FileOutcome = { ok: true; value: unknown } | { ok: false; reason: string };

/** The file that answers one key of one kind, and what reading it gave. */
export interface JudgedConfig {
  kind: ConfigKind;
  key: string;
  path: string;
  outcome: FileOutcome;
}

export interface Judgement {
  configs: JudgedConfig[];
  /** Files that never answer whatever they hold: bad names, wrong places, a second file for one key. */
  problems: StoreProblem[];
}

/**
 * The one judgement of a scanned data directory, shared by the live store and `validate` so
 * both say the same of every file: a misnamed file is a problem; of two files for one key
 * the first by path answers and the other is a problem; the file that answers is read
 * (through `read`, which the store backs with its cache of unchanged files).
 */
export async function judgeDataFiles(files: DataFile[], read: (file: KeyedFile) => Promise<FileOutcome>): Promise<Judgement> {
  const problems: StoreProblem[] = [];
  const primaries = new Map<string, KeyedFile>();
  for (const file of files) {
    if (file.key === undefined) {
      problems.push({ kind: file.kind, path: file.path, reason: file.nameProblem ?? 'unusable', lastGoodServing: false });
      continue;
    }
    const id = `${file.kind}/${file.key}`;
    const first = primaries.get(id);
    if (first) {
      problems.push({ kind: file.kind, path: file.path, reason: `same ${file.key} as ${first.path}; only that file is used`, lastGoodServing: false });
      continue;
    }
    primaries.set(id, file as KeyedFile);
  }
  const configs: JudgedConfig[] = [];
  for (const file of primaries.values()) configs.push({ kind: file.kind, key: file.key, path: file.path, outcome: await read(file) });
  return { configs, problems };
}

/** Reads a file for judgeDataFiles, turning its error into the reason. */
export async function readOutcome(file: KeyedFile): Promise<FileOutcome> {
  try {
    return { ok: true, value: await readDataFile(file.kind, file.path) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** What `validate` reports: every file judged as the FileStore judges it. */
export interface DataCheck {
  dataPathExists: boolean;
  files: number;
  configs: { [K in ConfigKind]: string[] };
  problems: StoreProblem[];
}

export async function checkDataPath(dataPath: string): Promise<DataCheck> {
  const { files, dataPathExists } = await scanDataPath(dataPath);
  const judged = await judgeDataFiles(files, readOutcome);
  const configs: DataCheck['configs'] = { boot: [], cloud: [] };
  const problems = [...judged.problems];
  for (const c of judged.configs) {
    if (c.outcome.ok) configs[c.kind].push(c.key);
    else problems.push({ kind: c.kind, path: c.path, reason: c.outcome.reason, lastGoodServing: false });
  }
  // In the order the files were scanned, as before: the operator reads them top to bottom.
  const order = new Map(files.map((f, i) => [f.path, i]));
  problems.sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0));
  return { dataPathExists, files: files.length, configs, problems };
}
