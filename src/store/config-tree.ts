/**
 * A data directory's config files as one value: path under the directory (`/`-separated) →
 * bytes, for the directories etcd holds (etcd-keys.ts CONFIG_DIRS). `store push`/`diff` read a
 * directory into one, `store pull` and the etcd store's local mirror write one back, each file
 * atomically (a temporary file renamed over it), so a reader never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isIgnoredName } from './data-files.ts';
import { CONFIG_DIRS } from './etcd-keys.ts';

export type ConfigTree = Map<string, Buffer>;

/**
 * Every regular file under the config directories of `dir` (symlinks followed, as the stores
 * follow them), sorted by path; dotfiles and editor leftovers are skipped as the stores skip them.
 */
export async function readConfigTree(dir: string): Promise<ConfigTree> {
  const tree: ConfigTree = new Map();
  const visit = async (abs: string, rel: string) => {
    let names: string[];
    try {
      names = (await readdir(abs)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (isIgnoredName(name)) continue;
      const full = path.join(abs, name);
      const st = await stat(full).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await visit(full, `${rel}/${name}`);
      else if (st.isFile()) tree.set(`${rel}/${name}`, await readFile(full));
    }
  };
  for (const top of CONFIG_DIRS) await visit(path.join(dir, top), top);
  return tree;
}

export interface TreeChanges {
  added: string[];
  changed: string[];
  removed: string[];
}

/** What turns `from` into `to`, each list sorted. */
export function diffConfigTrees(from: ConfigTree, to: ConfigTree): TreeChanges {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [rel, bytes] of to) {
    const before = from.get(rel);
    if (before === undefined) added.push(rel);
    else if (!before.equals(bytes)) changed.push(rel);
  }
  for (const rel of from.keys()) if (!to.has(rel)) removed.push(rel);
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}

export function hasChanges(c: TreeChanges): boolean {
  return c.added.length + c.changed.length + c.removed.length > 0;
}

/** A path from the store must stay inside the directory it is written to. */
function target(dir: string, rel: string): string {
  const full = path.resolve(dir, ...rel.split('/'));
  if (!full.startsWith(path.resolve(dir) + path.sep)) throw new Error(`${rel}: outside ${dir}`);
  return full;
}

async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Makes the config directories of `dir` hold exactly `tree`: files written or replaced
 * atomically, files not in it removed (and directories that become empty), other
 * directories of `dir` (dhcp/, state/) left alone. Returns what changed.
 */
export async function writeConfigTree(dir: string, tree: ConfigTree, current?: ConfigTree): Promise<TreeChanges> {
  const before = current ?? (await readConfigTree(dir));
  const changes = diffConfigTrees(before, tree);
  for (const rel of [...changes.added, ...changes.changed]) await writeAtomically(target(dir, rel), tree.get(rel)!);
  for (const rel of changes.removed) {
    const file = target(dir, rel);
    await rm(file, { force: true });
    // Empty directories left behind would be judged (an unexpected directory under boot/ is a problem).
    for (let d = path.dirname(file); d.startsWith(path.resolve(dir) + path.sep); d = path.dirname(d)) {
      if (
        !(await rmdir(d).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
  }
  return changes;
}
