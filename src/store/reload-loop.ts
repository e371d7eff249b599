import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log.ts';

export interface ReloadLoopOptions {
  /** One pass over the files; it calls watch() with the directories it saw. */
  scan: () => Promise<void>;
  log: Logger;
  /** Safety net behind the directory watchers (symlink targets, NFS, watcher limits). */
  pollIntervalMs: number;
  /** Editors write a file in several syscalls; changes settle this long before a reload. */
  debounceMs: number;
  /** For the log line when a reload fails: "store", "matchbox store", … */
  what: string;
}

/**
 * How every reader of --data-path keeps up with it: a scan at open, another whenever a watched
 * directory changes (debounced) or the poll ticks, never two at once (requests during a scan
 * coalesce into one more pass), and watchers on exactly the directories the last scan saw
 * (recursive fs.watch does not exist on Linux).
 */
export class ReloadLoop {
  private readonly watchers = new Map<string, FSWatcher>();
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private isClosed = false;

  constructor(private readonly options: ReloadLoopOptions) {}

  /** After close(): a scan still running must not publish what it read. */
  get closed(): boolean {
    return this.isClosed;
  }

  async open(): Promise<void> {
    this.isClosed = false;
    await this.reload();
    if (this.isClosed) return;
    this.pollTimer = setInterval(() => this.request(), this.options.pollIntervalMs);
    this.pollTimer.unref();
  }

  async close(): Promise<void> {
    this.isClosed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.scanning;
  }

  /** A scan now; resolves once its result is published. Concurrent calls coalesce. */
  reload(): Promise<void> {
    if (this.scanning) {
      this.rescanRequested = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescanRequested = false;
          await this.options.scan();
        } while (this.rescanRequested && !this.isClosed);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  /** A scan soon (debounced). */
  request(): void {
    if (this.isClosed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.reload().catch((err: unknown) => this.options.log.error({ err }, `${this.options.what} reload failed`));
    }, this.options.debounceMs);
    this.debounceTimer.unref();
  }

  /** Watches each of `dirs` that exists now, and drops watchers of directories that went away. */
  watch(dirs: string[]): void {
    if (this.isClosed) return;
    const wanted = new Set(dirs);
    for (const [dir, w] of this.watchers) {
      if (wanted.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.request());
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
          this.request();
        });
        this.watchers.set(dir, w);
      } catch (err) {
        // The poll still notices changes; a watcher limit (ENOSPC) must not stop the store.
        this.options.log.debug({ err, dir }, 'cannot watch directory; relying on the poll');
      }
    }
  }
}
