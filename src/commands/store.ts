/**
 * `store push|pull|diff DIR --store etcd://…`: moves a data directory's configs (boot/, cloud/,
 * groups/, profiles/, ignition/, generic/) to and from the etcd store. push judges DIR exactly as
 * `validate` does and refuses on any problem, then replaces the store's configs in one
 * transaction; pull writes the store back to DIR, each file atomically; diff prints what a push
 * would change (exit 1 when anything would).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { ConfigError } from '../config.ts';
import { diffConfigTrees, readConfigTree, writeConfigTree, type TreeChanges } from '../store/config-tree.ts';
import { connectEtcd, describeEtcdError, parseStoreUrl, StoreUrlError, type StoreUrl } from '../store/etcd-connection.ts';
import { configKey } from '../store/etcd-keys.ts';
import { readEtcdTree, replaceEtcdTree, StoreChangedError } from '../store/etcd-tree.ts';
import { goStyleFlags } from '../util/go-flags.ts';
import { judgeConfigs, type CommandIo } from './validate.ts';

export const STORE_USAGE = 'bootcfg-appliance store push|pull|diff DIR --store etcd://HOST:PORT[,HOST:PORT...][/PREFIX] [--store-ca FILE] [--store-cert FILE --store-key FILE]';

const ACTIONS = ['push', 'pull', 'diff'] as const;
type Action = (typeof ACTIONS)[number];
const TIMEOUT_MS = 10_000;

interface StoreArgs {
  action: Action;
  dir: string;
  url: StoreUrl;
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
}

/** Flags win over BOOTCFG_STORE*; a bad or missing one is a usage error (exit 2). */
function readArgs(args: string[], env: NodeJS.ProcessEnv): StoreArgs | 'help' {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: goStyleFlags(args),
      options: { store: { type: 'string' }, 'store-ca': { type: 'string' }, 'store-cert': { type: 'string' }, 'store-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new ConfigError(`store: ${(err as Error).message}`);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const [action, dir, ...extra] = positionals;
  if (!action || !(ACTIONS as readonly string[]).includes(action)) throw new ConfigError(`store: expected push, pull or diff${action ? `, got "${action}"` : ''} (${STORE_USAGE})`);
  if (!dir) throw new ConfigError(`store ${action}: needs the data directory (${STORE_USAGE})`);
  if (extra.length) throw new ConfigError(`store ${action}: unexpected argument "${extra[0]}"`);
  const flag = (name: string) => {
    const v = values[name];
    if (typeof v === 'string') return v;
    const e = env[`BOOTCFG_${name.toUpperCase().replaceAll('-', '_')}`];
    return e === undefined || e === '' ? undefined : e;
  };
  const store = flag('store');
  if (store === undefined) throw new ConfigError(`store ${action}: needs --store etcd://HOST:PORT[/PREFIX] (or BOOTCFG_STORE)`);
  let url: StoreUrl;
  try {
    url = parseStoreUrl(store);
  } catch (err) {
    if (err instanceof StoreUrlError) throw new ConfigError(`--store: ${err.message}`);
    throw err;
  }
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(p));
  return { action: action as Action, dir: path.resolve(dir), url, ca: abs(flag('store-ca')), cert: abs(flag('store-cert')), key: abs(flag('store-key')) };
}

function printChanges(out: (text: string) => void, prefix: string, changes: TreeChanges, strayRemoved: string[] = [], verbs = { added: 'added', changed: 'changed', removed: 'removed' }): void {
  for (const rel of changes.added) out(`${verbs.added} ${configKey(prefix, rel)}\n`);
  for (const rel of changes.changed) out(`${verbs.changed} ${configKey(prefix, rel)}\n`);
  for (const rel of changes.removed) out(`${verbs.removed} ${configKey(prefix, rel)}\n`);
  for (const key of strayRemoved) out(`${verbs.removed} ${key} (not a path of the data layout)\n`);
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await stat(dir).catch(() => undefined))?.isDirectory() === true;
}

async function push(client: Etcd3, a: StoreArgs, io: CommandIo): Promise<number> {
  const judged = await judgeConfigs(a.dir);
  if (!judged.check.dataPathExists) {
    io.stderr(`${a.dir}: not a directory\n`);
    return 1;
  }
  if (judged.errors.length) {
    for (const p of judged.errors) io.stderr(`${p.path}: ${p.reason}\n`);
    io.stderr(`${judged.errors.length} bad file(s) in ${a.dir}: nothing pushed (\`bootcfg-appliance validate --data-path ${a.dir}\` says the same)\n`);
    return 1;
  }
  const next = await readConfigTree(a.dir);
  const current = await readEtcdTree(client, a.url.prefix, TIMEOUT_MS);
  const { changes, strayRemoved, revision } = await replaceEtcdTree(client, a.url.prefix, current, next, TIMEOUT_MS);
  if (revision === undefined) {
    io.stdout(`no changes: ${a.url.prefix}/config/ already holds the ${next.size} file(s) of ${a.dir}\n`);
    return 0;
  }
  printChanges(io.stdout, a.url.prefix, changes, strayRemoved);
  io.stdout(`pushed ${a.dir} in one transaction (revision ${revision}): ${changes.added.length} added, ${changes.changed.length} changed, ${changes.removed.length + strayRemoved.length} removed\n`);
  return 0;
}

async function pull(client: Etcd3, a: StoreArgs, io: CommandIo): Promise<number> {
  const current = await readEtcdTree(client, a.url.prefix, TIMEOUT_MS);
  for (const key of current.strayKeys) io.stderr(`skipped ${key}: not a path of the data layout\n`);
  const changes = await writeConfigTree(a.dir, current.tree);
  printChanges(io.stdout, a.url.prefix, changes, [], { added: 'wrote', changed: 'updated', removed: 'deleted' });
  io.stdout(`pulled ${current.tree.size} file(s) of ${a.url.prefix}/config/ (revision ${current.revision}) into ${a.dir}\n`);
  return 0;
}

async function diff(client: Etcd3, a: StoreArgs, io: CommandIo): Promise<number> {
  if (!(await isDirectory(a.dir))) {
    io.stderr(`${a.dir}: not a directory\n`);
    return 2;
  }
  const local = await readConfigTree(a.dir);
  const current = await readEtcdTree(client, a.url.prefix, TIMEOUT_MS);
  // From the store to the directory: what `store push` of DIR would do.
  const changes = diffConfigTrees(current.tree, local);
  const count = changes.added.length + changes.changed.length + changes.removed.length + current.strayKeys.length;
  printChanges(io.stdout, a.url.prefix, changes, current.strayKeys, { added: `only in ${a.dir}:`, changed: 'differs:', removed: 'only in the store:' });
  io.stdout(count ? `${count} difference(s) between ${a.dir} and ${a.url.prefix}/config/\n` : `no differences between ${a.dir} and ${a.url.prefix}/config/\n`);
  return count ? 1 : 0;
}

/** Exit 0 done (diff: no differences), 1 refused or failed (diff: differences), 2 usage (diff: also trouble). */
export async function storeCommand(args: string[], io: CommandIo): Promise<number> {
  const a = readArgs(args, io.env);
  if (a === 'help') {
    io.stdout(
      `Usage: ${STORE_USAGE}\n\n` +
        `  push  judge DIR as \`validate\` does, refuse on any problem, then make the store hold exactly DIR's\n` +
        `        boot/, cloud/, groups/, profiles/, ignition/ and generic/ files, in one transaction\n` +
        `  pull  write the store's configs into DIR (each file atomically; files the store does not hold are removed)\n` +
        `  diff  print what a push of DIR would change; exit 1 when anything would, 2 when it cannot tell\n` +
        `--store (env BOOTCFG_STORE), --store-ca/--store-cert/--store-key (BOOTCFG_STORE_CA, _CERT, _KEY) as for serve.\n`,
    );
    return 0;
  }
  let client: Etcd3;
  try {
    client = connectEtcd({ endpoints: a.url.endpoints, prefix: a.url.prefix, ca: a.ca, cert: a.cert, key: a.key });
  } catch (err) {
    if (err instanceof StoreUrlError) throw new ConfigError(err.message);
    throw err;
  }
  try {
    if (a.action === 'push') return await push(client, a, io);
    if (a.action === 'pull') return await pull(client, a, io);
    return await diff(client, a, io);
  } catch (err) {
    if (err instanceof StoreChangedError) io.stderr(`store ${a.action}: ${err.message}\n`);
    else io.stderr(`store ${a.action}: etcd at ${a.url.endpoints.join(',')}: ${describeEtcdError(err as Error, a)}\n`);
    // diff keeps diff(1)'s codes: 1 means "differences", so trouble is 2.
    return a.action === 'diff' ? 2 : 1;
  } finally {
    client.close();
  }
}
