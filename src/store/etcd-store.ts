/**
 * The configs from etcd (--store etcd://…): every key under `<prefix>/config/` is a file of
 * the data layout (etcd-keys.ts). They are kept in a local mirror directory and served by the
 * same FileStore and MatchboxStore that serve --data-path, so a value is judged exactly as a
 * file is, lookups come from memory, and a broken value keeps its last good version serving.
 *
 * Keeping up: an etcd watch on the prefix only says "something changed"; each sync then reads
 * the whole prefix at one revision (a push is one transaction, so a sync never sees half of
 * one) and writes what differs to the mirror. A poll behind the watch notices an outage and
 * its end. While etcd cannot be reached the mirror keeps serving (also across a restart);
 * the outage is logged once, and shown by health() and the bootcfg_store_connected gauge.
 */
import type { Etcd3, Watcher } from 'etcd3';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { BootConfig } from './boot-config.ts';
import { readConfigTree, writeConfigTree, type ConfigTree } from './config-tree.ts';
import { configKey, configPrefix } from './etcd-keys.ts';
import { readEtcdTree, readEtcdTreeSignature, type EtcdTree } from './etcd-tree.ts';
import { FileStore } from './file-store.ts';
import { MatchboxStore, type MatchboxStoreOptions } from './matchbox-store.ts';
import { ReloadLoop } from './reload-loop.ts';
import type { CloudConfig, LookupResult, MachineQuery, Store, StoreProblem } from './store.ts';

export interface EtcdStoreOptions {
  log: Logger;
  metrics?: Metrics | undefined;
  /** The client (etcd-connection.ts connectEtcd); the store closes it on close(). */
  client: Etcd3;
  prefix: string;
  /** The endpoints, for logs and health text. */
  endpoints: string[];
  /** Where the last configs read are kept; only this store writes there. */
  mirrorPath: string;
  checkTemplate?: MatchboxStoreOptions['checkTemplate'];
  /** An outage's reason in the flags' words (etcd-connection.ts describeEtcdError); default: the client's message. */
  describeError?: ((err: Error) => string) | undefined;
  /** The poll behind the watch: how soon an outage or its end is noticed without a watch event. */
  pollIntervalMs?: number;
  /** One read of the prefix may take this long before etcd counts as unreachable. */
  requestTimeoutMs?: number;
}

export interface StoreHealth {
  connected: boolean;
  /** Why not, when not connected. */
  reason?: string | undefined;
  /** When the state last changed. */
  since: Date;
}

export class EtcdStore implements Store {
  /** The mirror: paths in lookups and explain name the file that serves. */
  readonly dataPath: string;
  /** The matchbox layout (groups, profiles, templates) from the same keys; its service opens it after this store. */
  readonly matchbox: MatchboxStore;
  private readonly files: FileStore;
  private readonly log: Logger;
  private readonly loop: ReloadLoop;
  private readonly client: Etcd3;
  private mirrored: ConfigTree = new Map();
  private watcher: Watcher | undefined;
  /** readEtcdTreeSignature at the last sync that read the values; undefined: read them next time. */
  private syncedSignature: string | undefined;
  private watching: Promise<void> | undefined;
  private state: StoreHealth = { connected: false, reason: 'not read yet', since: new Date() };
  private stateKnown = false;
  /** Problems already logged (by key and reason), so a sync does not repeat them. */
  private reported = new Set<string>();
  private badKeys: StoreProblem[] = [];

  constructor(private readonly options: EtcdStoreOptions) {
    this.dataPath = options.mirrorPath;
    this.client = options.client;
    this.log = options.log.child({ component: 'etcd-store' });
    // The mirror changes only when a sync writes it, and each sync reloads both stores itself.
    const inner = { log: options.log, metrics: options.metrics, pollIntervalMs: 3_600_000, debounceMs: 100 };
    this.files = new FileStore(options.mirrorPath, inner);
    this.matchbox = new MatchboxStore(options.mirrorPath, { ...inner, checkTemplate: options.checkTemplate });
    this.loop = new ReloadLoop({ scan: () => this.sync(), log: this.log, pollIntervalMs: options.pollIntervalMs ?? 2000, debounceMs: 10, what: 'etcd store' });
  }

  boot(query: MachineQuery): LookupResult<BootConfig> {
    return this.files.boot(query);
  }

  cloud(query: MachineQuery): LookupResult<CloudConfig> {
    return this.files.cloud(query);
  }

  /** Boot and cloud values rejected, each named by its etcd key. */
  problems(): StoreProblem[] {
    return [...this.badKeys, ...this.files.problems().map((p) => ({ ...p, path: this.keyOf(p.path) }))];
  }

  health(): StoreHealth {
    return { ...this.state };
  }

  async open(): Promise<void> {
    this.options.metrics?.storeConnected.set({ store: 'etcd' }, 0);
    await mkdir(this.options.mirrorPath, { recursive: true });
    this.mirrored = await readConfigTree(this.options.mirrorPath);
    await this.files.open();
    await this.loop.open();
    if (!this.state.connected) this.log.warn({ mirror: this.options.mirrorPath, files: this.mirrored.size }, `serving the ${this.mirrored.size} config file(s) last read from etcd until it answers`);
  }

  async close(): Promise<void> {
    await this.loop.close();
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel().catch(() => undefined);
    await this.files.close();
    this.client.close();
  }

  private keyOf(mirrorFile: string): string {
    const rel = path.relative(this.options.mirrorPath, mirrorFile).split(path.sep).join('/');
    return rel.startsWith('..') ? mirrorFile : `etcd:${configKey(this.options.prefix, rel)}`;
  }

  private setState(connected: boolean, reason?: string): void {
    // Only a change of state is logged: an outage is one line however long it lasts.
    if (connected === this.state.connected && this.stateKnown) return;
    this.stateKnown = true;
    this.state = { connected, reason, since: new Date() };
    this.options.metrics?.storeConnected.set({ store: 'etcd' }, connected ? 1 : 0);
    const endpoints = this.options.endpoints.join(',');
    if (connected) this.log.info({ endpoints }, `etcd store connected (${endpoints}): configs in step`);
    else this.log.error({ endpoints, reason }, `etcd store unreachable (${endpoints}): ${reason}; the last configs read keep serving, retrying`);
  }

  /**
   * One pass: if anything under the prefix changed since the last pass (keys only: the poll
   * is cheap), the whole prefix at one revision → the mirror → both stores reloaded.
   */
  private async sync(): Promise<void> {
    const timeoutMs = this.options.requestTimeoutMs ?? 3000;
    let read: EtcdTree;
    let signature: string;
    try {
      signature = await readEtcdTreeSignature(this.client, this.options.prefix, timeoutMs);
      if (signature === this.syncedSignature && this.state.connected) return;
      read = await readEtcdTree(this.client, this.options.prefix, timeoutMs);
    } catch (err) {
      this.setState(false, this.options.describeError ? this.options.describeError(err as Error) : (err as Error).message.replace(/\s*\n\s*/g, ' '));
      return;
    }
    if (this.loop.closed) return;
    const { tree } = read;
    // A stray key is of no kind; it is listed with the boot configs, where `validate` lists misplaced files.
    const badKeys: StoreProblem[] = read.strayKeys.map((key) => ({
      kind: 'boot',
      path: `etcd:${key}`,
      reason: 'not a path of the data layout (boot/, cloud/, groups/, profiles/, ignition/ or generic/, then a file name)',
      lastGoodServing: false,
    }));
    let changes: Awaited<ReturnType<typeof writeConfigTree>>;
    try {
      changes = await writeConfigTree(this.options.mirrorPath, tree, this.mirrored);
    } catch (err) {
      // What was written is served at the next pass; until then the previous configs serve.
      this.log.error({ err, mirror: this.options.mirrorPath }, `cannot write the etcd mirror ${this.options.mirrorPath}: ${(err as Error).message}`);
      this.syncedSignature = undefined;
      return;
    }
    this.mirrored = tree;
    // A change between the two reads only makes the next pass read again.
    this.syncedSignature = signature;
    this.badKeys = badKeys;
    const changed = changes.added.length + changes.changed.length + changes.removed.length > 0;
    if (changed) {
      await this.files.reload();
      await this.matchbox.reload();
      this.options.metrics?.storeReloads.inc({ kind: 'etcd' });
      this.log.info({ ...changes }, `etcd configs: ${changes.added.length} added, ${changes.changed.length} changed, ${changes.removed.length} removed`);
    }
    this.reportProblems();
    this.setState(true);
    this.ensureWatch(read.revision);
  }

  /** Each rejected value once, by its key: the inner stores log it by its mirror path. */
  private reportProblems(): void {
    const all = [...this.problems(), ...this.matchbox.problems().map((p) => ({ path: this.keyOf(p.path), reason: p.reason, lastGoodServing: p.lastGoodServing }))];
    const seen = new Set<string>();
    for (const p of all) {
      const id = `${p.path}\0${p.reason}`;
      seen.add(id);
      if (this.reported.has(id)) continue;
      this.log.error({ key: p.path, reason: p.reason, lastGoodServing: p.lastGoodServing }, `broken value ${p.path}: ${p.reason}${p.lastGoodServing ? ' (the last good version keeps serving)' : ''}`);
    }
    this.reported = seen;
  }

  /**
   * The watch, from just after the revision the first sync read (nothing between is missed):
   * every event asks for a sync. etcd3 re-establishes it after an outage by itself; one it
   * gives up on (an error, e.g. its revision compacted away) is made again at the next sync.
   */
  private ensureWatch(readRevision: string): void {
    if (this.watcher || this.watching || this.loop.closed) return;
    this.watching = (async () => {
      try {
        const watcher = await this.client
          .watch()
          .prefix(configPrefix(this.options.prefix))
          .startRevision(String(BigInt(readRevision) + 1n))
          .create();
        if (this.loop.closed) {
          await watcher.cancel();
          return;
        }
        watcher.on('data', () => this.loop.request());
        watcher.on('connected', () => this.loop.request());
        watcher.on('disconnected', () => this.loop.request());
        watcher.on('error', (err: Error) => {
          this.log.warn({ err }, `etcd watch ended (${err.message}); the poll keeps the configs in step until it is made again`);
          if (this.watcher === watcher) this.watcher = undefined;
          void watcher.cancel().catch(() => undefined);
          this.loop.request();
        });
        this.watcher = watcher;
      } catch (err) {
        this.log.debug({ err }, 'cannot watch etcd yet; the poll keeps the configs in step');
      } finally {
        this.watching = undefined;
      }
    })();
  }
}
