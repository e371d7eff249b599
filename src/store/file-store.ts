import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { BootConfig } from './boot-config.ts';
import { ReloadLoop } from './reload-loop.ts';
import { judgeDataFiles, readOutcome, scanDataPath, type ConfigValue, type FileOutcome, type KeyedFile, type Signature } from './data-files.ts';
import { CONFIG_KINDS, lookupKeys, type CloudConfig, type ConfigKind, type LookupResult, type LookupStep, type MachineQuery, type Store, type StoreProblem } from './store.ts';

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
interface Parsed {
  signature: Signature;
  outcome: FileOutcome;
}

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
  /** Name and duplicate problems already logged, so the poll does not repeat them every interval. */
  private reportedProblems = new Set<string>();
  private warnedMissing = false;
  private readonly log: Logger;
  private readonly loop: ReloadLoop;

  constructor(
    readonly dataPath: string,
    private readonly options: FileStoreOptions,
  ) {
    this.log = options.log.child({ component: 'store' });
    this.loop = new ReloadLoop({ scan: () => this.scanOnce(), log: this.log, pollIntervalMs: options.pollIntervalMs ?? 2000, debounceMs: options.debounceMs ?? 100, what: 'store' });
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

  open(): Promise<void> {
    return this.loop.open();
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** Re-reads what changed on disk now; resolves once the new state is serving. Concurrent calls coalesce. */
  reload(): Promise<void> {
    return this.loop.reload();
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
    if (this.loop.closed) return;
    if (!dataPathExists && !this.warnedMissing) {
      this.warnedMissing = true;
      this.log.warn({ dataPath: this.dataPath }, 'data path does not exist: every lookup misses until it appears');
    } else if (dataPathExists) this.warnedMissing = false;
    this.loop.watch(dirs);

    const changedKinds = new Set<ConfigKind>();
    const nextParsed = new Map<string, Parsed>();
    const fresh = new Set<string>();
    const read = async (file: KeyedFile): Promise<FileOutcome> => {
      const before = this.parsed.get(file.path);
      const parsed = before?.signature === file.signature ? before : { signature: file.signature, outcome: await readOutcome(file) };
      if (parsed !== before) {
        fresh.add(file.path);
        changedKinds.add(file.kind);
      }
      nextParsed.set(file.path, parsed);
      return parsed.outcome;
    };
    const judged = await judgeDataFiles(files, read);
    if (this.loop.closed) return;
    // A file that is now the second for its key is not read, but it is still there: keep what
    // is known of it, so it is not reported as removed and is not re-read when it answers again.
    for (const file of files) {
      const before = file.key !== undefined && !nextParsed.has(file.path) ? this.parsed.get(file.path) : undefined;
      if (before?.signature === file.signature) nextParsed.set(file.path, before);
    }

    const problems = [...judged.problems];
    const reported = new Set<string>();
    for (const p of judged.problems) {
      const id = `${p.path}\0${p.reason}`;
      reported.add(id);
      if (this.reportedProblems.has(id)) continue;
      this.options.metrics?.storeErrors.inc({ kind: p.kind });
      this.log.error({ kind: p.kind, path: p.path, reason: p.reason }, `ignoring ${p.path}: ${p.reason}`);
    }
    this.reportedProblems = reported;
    for (const p of this.parsed.keys()) {
      if (nextParsed.has(p)) continue;
      const kind = this.kindOfPath(p);
      if (kind) changedKinds.add(kind);
      this.log.info({ kind, path: p }, `config removed: ${p}`);
    }

    const next: Entries = { boot: new Map(), cloud: new Map() };
    for (const { kind, key, path, outcome } of judged.configs) {
      const prev = (this.entries[kind] as Map<string, Entry<unknown>>).get(key);
      const target = next[kind] as Map<string, Entry<unknown>>;
      if (outcome.ok) {
        target.set(key, { key, path, value: outcome.value, valuePath: path, problem: undefined });
        if (fresh.has(path)) this.log.info({ kind, key, path }, `config loaded: ${path}`);
        continue;
      }
      const lastGoodServing = prev?.value !== undefined;
      target.set(key, { key, path, value: prev?.value, valuePath: prev?.valuePath, problem: outcome.reason });
      problems.push({ kind, path, reason: outcome.reason, lastGoodServing });
      if (fresh.has(path)) {
        this.options.metrics?.storeErrors.inc({ kind });
        this.log.error({ kind, key, path, reason: outcome.reason, lastGoodServing }, `broken config ${path}: ${outcome.reason}${lastGoodServing ? ' (the last good version keeps serving)' : ''}`);
      }
    }

    // Problems in the order the files were scanned, as `validate` lists them.
    const order = new Map(files.map((f, i) => [f.path, i]));
    problems.sort((a, b) => (order.get(a.path) ?? 0) - (order.get(b.path) ?? 0));
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
}
