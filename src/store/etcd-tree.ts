/**
 * The config tree as etcd holds it (etcd-keys.ts: `<prefix>/config/<path>` → the file's bytes):
 * read whole at one revision, and replaced in one transaction that fails rather than overwrite
 * a change made since the read, so no appliance ever sees a push half applied.
 */
import type { Etcd3 } from 'etcd3';
import { diffConfigTrees, type ConfigTree, type TreeChanges } from './config-tree.ts';
import { configKey, configPrefix, relOfConfigKey } from './etcd-keys.ts';

export interface EtcdTree {
  tree: ConfigTree;
  /** Each config key's mod_revision at the read, for the transaction's compares. */
  modRevisions: Map<string, string>;
  /** Keys under config/ that name no path of the data layout (written by hand). */
  strayKeys: string[];
  revision: string;
}

export async function readEtcdTree(client: Etcd3, prefix: string, timeoutMs: number): Promise<EtcdTree> {
  const res = await client
    .getAll()
    .prefix(configPrefix(prefix))
    .options({ deadline: new Date(Date.now() + timeoutMs) })
    .exec();
  const tree: ConfigTree = new Map();
  const modRevisions = new Map<string, string>();
  const strayKeys: string[] = [];
  for (const kv of res.kvs) {
    const key = kv.key.toString('utf8');
    modRevisions.set(key, kv.mod_revision);
    const rel = relOfConfigKey(prefix, key);
    if (rel === undefined) strayKeys.push(key);
    else tree.set(rel, kv.value);
  }
  return { tree, modRevisions, strayKeys, revision: res.header.revision };
}

/** The end of the range of keys that start with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1; // prefixes here end in "/", never 0xff
  return end;
}

/**
 * What changes whenever anything under config/ does: the number of keys and the newest
 * mod_revision among them (a delete lowers the count, a put raises the revision). Read with
 * keys only, so the poll behind the watch costs no values.
 */
export async function readEtcdTreeSignature(client: Etcd3, prefix: string, timeoutMs: number): Promise<string> {
  const key = Buffer.from(configPrefix(prefix));
  const res = await client.kv.range({ key, range_end: prefixEnd(key), keys_only: true }, { deadline: new Date(Date.now() + timeoutMs) });
  let newest = 0n;
  for (const kv of res.kvs) if (BigInt(kv.mod_revision) > newest) newest = BigInt(kv.mod_revision);
  return `${res.kvs.length}@${newest}`;
}

export class StoreChangedError extends Error {}

/**
 * Makes the store hold exactly `next`, in one transaction: puts for new and changed paths,
 * deletes for paths (and stray keys) no longer there. Every key read is compared against its
 * revision at the read (and every new one against not existing), so a concurrent push makes
 * this one fail with StoreChangedError and write nothing. Returns what changed and the revision.
 */
export async function replaceEtcdTree(
  client: Etcd3,
  prefix: string,
  current: EtcdTree,
  next: ConfigTree,
  timeoutMs: number,
): Promise<{ changes: TreeChanges; strayRemoved: string[]; revision: string | undefined }> {
  const changes = diffConfigTrees(current.tree, next);
  const deletes = [...changes.removed.map((rel) => configKey(prefix, rel)), ...current.strayKeys];
  if (changes.added.length + changes.changed.length + deletes.length === 0) return { changes, strayRemoved: [], revision: undefined };
  const compare = [
    ...[...current.modRevisions].map(([key, rev]) => ({ key: Buffer.from(key), target: 'Mod' as const, result: 'Equal' as const, mod_revision: rev })),
    ...changes.added.map((rel) => ({ key: Buffer.from(configKey(prefix, rel)), target: 'Version' as const, result: 'Equal' as const, version: 0 })),
  ];
  const success = [
    ...[...changes.added, ...changes.changed].map((rel) => ({ request_put: { key: Buffer.from(configKey(prefix, rel)), value: next.get(rel)! } })),
    ...deletes.map((key) => ({ request_delete_range: { key: Buffer.from(key) } })),
  ];
  const res = await client.kv.txn({ compare, success, failure: [] }, { deadline: new Date(Date.now() + timeoutMs) });
  if (!res.succeeded) throw new StoreChangedError('the store changed while this push was being prepared; nothing was written (run it again)');
  return { changes, strayRemoved: current.strayKeys, revision: res.header.revision };
}
