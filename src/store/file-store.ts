import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { BootConfig } from './boot-config.ts';
import { readDataFile, scanDataPath, type ConfigValue, type DataFile, type Signature } from './data-files.ts';
import {
  CONFIG_KINDS,
  lookupKeys,
  type CloudConfig,
  type ConfigKind,
  type LookupResult,
  type LookupStep,
  type MachineQuery,
  type Store,
  type StoreProblem,
} from './store.ts';

/** What is known about one key of one kind: the file behind it now, and the last version of it that parsed. */
interface Entry<T> {
  key: string;
  path: string;
  /** The last good version (undefined if the file never parsed). */
  value: T | undefined;
  valuePath: string | undefined;
  /** What is wrong with the file on disk now; undefined when the disk version is the one serving. */
  problem: string | undefined;
}

/** The outcome of reading one file at one signature, kept so unchanged files are never re-read. */
type Parsed = { signature: Signature; ok: true; value: unknown } | { signature: Signature; ok: false; reason: string };

type Entries = { [K in ConfigKind]: Map<string, Entry<ConfigValue<K>>> };

export interface FileStoreOptions {
  log: Logger;
  metrics?: Metrics | undefined;
  /** Safety net behind the directory watchers (symlink targets, NFS, watcher limits). */
  pollIntervalMs?: number;
  /** Editors write a file in several syscalls; changes settle this long before a reload. */
  debounceMs?: number;
}

/**
 * Boot and cloud configs from --data-path, served from memory. Changes are noticed by a
 * watcher on every directory of the layout (recursive fs.watch does not exist on Linux
 * with Node 20) plus a slow poll, and applied after a short debounce. A file that stops
 * parsing is reported and its last good version keeps serving.
 */
export class FileStore implements Store {
  private entries: Entries = { boot: new Map(), cloud: new Map() };
  private parsed = new Map<string, Parsed>();
  private problemList: StoreProblem[] = [];
  /** Name problems already logged, so the poll does not repeat them every interval. */
  private reportedNameProblems = new Set<string>();
  private watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private closed = false;
  private warnedMissing = false;
  private readonly log: Logger;
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;

  constructor(
    readonly dataPath: string,
    private readonly options: FileStoreOptions,
  ) {
    this.log = options.log.child({ component: 'store' });
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.debounceMs = options.debounceMs ?? 100;
  }

  boot(query: MachineQuery): LookupResult<BootConfig> {
    return this.lookup('boot', query);
  }

  cloud(query: MachineQuery): LookupResult<CloudConfig> {
    return this.lookup('cloud', query);
  }

  problems(): StoreProblem[] {
    return [...this.problemList];
  }

  /** Every key currently known for a kind, with the file behind it (for listings and explain). */
  keys(kind: ConfigKind): { key: string; path: string; serving: boolean; problem: string | undefined }[] {
    return [...this.entries[kind].values()].map((e) => ({ key: e.key, path: e.path, serving: e.value !== undefined, problem: e.problem }));
  }

  async open(): Promise<void> {
    this.closed = false;
    await this.reload();
    if (this.closed) return;
    this.pollTimer = setInterval(() => this.requestReload(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.scanning;
  }

  /** Re-reads what changed on disk now; resolves once the new state is serving. Concurrent calls coalesce. */
  async reload(): Promise<void> {
    if (this.scanning) {
      this.rescanRequested = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescanRequested = false;
          await this.scanOnce();
        } while (this.rescanRequested && !this.closed);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  private requestReload(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.reload().catch((err: unknown) => this.log.error({ err }, 'store reload failed'));
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  private lookup<K extends ConfigKind>(kind: K, query: MachineQuery): LookupResult<ConfigValue<K>> {
    const map = this.entries[kind] as Map<string, Entry<ConfigValue<K>>>;
    const steps: LookupStep[] = [];
    for (const key of lookupKeys(query)) {
      const entry = map.get(key);
      if (!entry) {
        steps.push({ key, outcome: 'miss' });
        continue;
      }
      let step: LookupStep;
      if (entry.value === undefined) step = { key, outcome: 'broken', path: entry.path, problem: entry.problem ?? 'unknown' };
      else if (entry.problem !== undefined) step = { key, outcome: 'hit', path: entry.valuePath ?? entry.path, stale: true, problem: entry.problem };
      else step = { key, outcome: 'hit', path: entry.path };
      steps.push(step);
      return { kind, query, value: entry.value, decidedBy: step, steps };
    }
    return { kind, query, value: undefined, decidedBy: undefined, steps };
  }

  private async scanOnce(): Promise<void> {
    const { files, dirs, dataPathExists } = await scanDataPath(this.dataPath);
    if (this.closed) return;
    if (!dataPathExists && !this.warnedMissing) {
      this.warnedMissing = true;
      this.log.warn({ dataPath: this.dataPath }, 'data path does not exist: every lookup misses until it appears');
    } else if (dataPathExists) this.warnedMissing = false;
    this.watchDirs(dirs);

    const changedKinds = new Set<ConfigKind>();
    const nextParsed = new Map<string, Parsed>();
    const problems: StoreProblem[] = [];
    const byKey: { [K in ConfigKind]: Map<string, DataFile[]> } = { boot: new Map(), cloud: new Map() };
    const namedPaths = new Set<string>();

    for (const file of files) {
      if (file.key === undefined) {
        problems.push({ kind: file.kind, path: file.path, reason: file.nameProblem ?? 'unusable', lastGoodServing: false });
        const id = `${file.path}\0${file.nameProblem}`;
        namedPaths.add(id);
        if (!this.reportedNameProblems.has(id)) {
          this.reportedNameProblems.add(id);
          this.options.metrics?.storeErrors.inc({ kind: file.kind });
          this.log.error({ kind: file.kind, path: file.path, reason: file.nameProblem }, `ignoring ${file.path}: ${file.nameProblem}`);
        }
        continue;
      }
      const group = byKey[file.kind].get(file.key) ?? [];
      group.push(file);
      byKey[file.kind].set(file.key, group);

      const before = this.parsed.get(file.path);
      if (before && before.signature === file.signature) {
        nextParsed.set(file.path, before);
        continue;
      }
      changedKinds.add(file.kind);
      let parsed: Parsed;
      try {
        parsed = { signature: file.signature, ok: true, value: await readDataFile(file.kind, file.path) };
      } catch (err) {
        parsed = { signature: file.signature, ok: false, reason: (err as Error).message };
      }
      nextParsed.set(file.path, parsed);
    }
    for (const id of this.reportedNameProblems) if (!namedPaths.has(id)) this.reportedNameProblems.delete(id);
    for (const p of this.parsed.keys()) {
      if (nextParsed.has(p)) continue;
      const kind = this.kindOfPath(p);
      if (kind) changedKinds.add(kind);
      this.log.info({ kind, path: p }, `config removed: ${p}`);
    }
    if (this.closed) return;

    const next: Entries = { boot: new Map(), cloud: new Map() };
    for (const kind of CONFIG_KINDS) {
      const previous = this.entries[kind] as Map<string, Entry<unknown>>;
      const target = next[kind] as Map<string, Entry<unknown>>;
      for (const [key, group] of byKey[kind]) {
        const [primary, ...duplicates] = group;
        for (const dup of duplicates) {
          const reason = `same ${key} as ${primary!.path}; only that file is used`;
          problems.push({ kind, path: dup.path, reason, lastGoodServing: false });
          if (this.parsed.get(dup.path)?.signature !== dup.signature) {
            this.options.metrics?.storeErrors.inc({ kind });
            this.log.error({ kind, path: dup.path, reason }, `ignoring ${dup.path}: ${reason}`);
          }
        }
        const parsed = nextParsed.get(primary!.path)!;
        const prev = previous.get(key);
        const fresh = this.parsed.get(primary!.path)?.signature !== parsed.signature;
        if (parsed.ok) {
          target.set(key, { key, path: primary!.path, value: parsed.value, valuePath: primary!.path, problem: undefined });
          if (fresh) this.log.info({ kind, key, path: primary!.path }, `config loaded: ${primary!.path}`);
        } else {
          const lastGoodServing = prev?.value !== undefined;
          target.set(key, {
            key,
            path: primary!.path,
            value: prev?.value,
            valuePath: prev?.valuePath,
            problem: parsed.reason,
          });
          problems.push({ kind, path: primary!.path, reason: parsed.reason, lastGoodServing });
          if (fresh) {
            this.options.metrics?.storeErrors.inc({ kind });
            this.log.error(
              { kind, key, path: primary!.path, reason: parsed.reason, lastGoodServing },
              `broken config ${primary!.path}: ${parsed.reason}${lastGoodServing ? ' (the last good version keeps serving)' : ''}`,
            );
          }
        }
      }
    }

    this.parsed = nextParsed;
    this.entries = next;
    this.problemList = problems;
    for (const kind of changedKinds) this.options.metrics?.storeReloads.inc({ kind });
    if (changedKinds.size) {
      this.log.info(
        { boot: next.boot.size, cloud: next.cloud.size, problems: problems.length, dataPath: this.dataPath },
        `store loaded: ${next.boot.size} boot and ${next.cloud.size} cloud configs, ${problems.length} problem(s)`,
      );
    }
  }

  private kindOfPath(p: string): ConfigKind | undefined {
    for (const kind of CONFIG_KINDS) if (p.startsWith(`${this.dataPath}/${kind}/`)) return kind;
    return undefined;
  }

  /** Watches each directory of the layout that exists now, and drops watchers of directories that went away. */
  private watchDirs(dirs: string[]): void {
    if (this.closed) return;
    const wanted = new Set(dirs);
    for (const [dir, w] of this.watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.requestReload());
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.requestReload();
        });
        this.watchers.set(dir, w);
      } catch (err) {
        // The poll still notices changes; a watcher limit (ENOSPC) must not stop the store.
        this.log.debug({ err, dir }, 'cannot watch directory; relying on the poll');
      }
    }
  }
}

/** What `validate` reports: every file judged as the FileStore would judge it. */
export interface DataCheck {
  dataPathExists: boolean;
  files: number;
  configs: { [K in ConfigKind]: string[] };
  problems: StoreProblem[];
}

export async function checkDataPath(dataPath: string): Promise<DataCheck> {
  const { files, dataPathExists } = await scanDataPath(dataPath);
  const configs: DataCheck['configs'] = { boot: [], cloud: [] };
  const problems: StoreProblem[] = [];
  const seen = new Map<string, string>();
  for (const file of files) {
    if (file.key === undefined) {
      problems.push({ kind: file.kind, path: file.path, reason: file.nameProblem ?? 'unusable', lastGoodServing: false });
      continue;
    }
    const id = `${file.kind}/${file.key}`;
    const first = seen.get(id);
    if (first) {
      problems.push({ kind: file.kind, path: file.path, reason: `same ${file.key} as ${first}; only that file is used`, lastGoodServing: false });
      continue;
    }
    seen.set(id, file.path);
    try {
      await readDataFile(file.kind, file.path);
      configs[file.kind].push(file.key);
    } catch (err) {
      problems.push({ kind: file.kind, path: file.path, reason: (err as Error).message, lastGoodServing: false });
    }
  }
  return { dataPathExists, files: files.length, configs, problems };
}
