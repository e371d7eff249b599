/**
 * Makes the lease pool durable: a lease is on disk before its ACK leaves.
 *
 * Layout beside --lease-file (default <data-path>/state/leases.json):
 *   leases.json           snapshot, replaced atomically (temp + fsync + rename + fsync dir)
 *   leases.json.journal   changes since the snapshot, one JSON line each, appended + fdatasync
 *   leases.json.prev      the snapshot before the last compaction (last good copy)
 *   leases.json.journal.prev  the journal that the last compaction folded in
 *   leases.json.lock      flock(2)ed for the life of the process using the file (its pid inside, for the message)
 *
 * Why a journal: rewriting the whole file per commit costs O(leases) CPU and would cap a
 * busy segment well below dnsmasq (which rewrites and fsyncs its file per lease). Here one
 * append + fdatasync covers every lease bound since the previous one (group commit), and a
 * line is a record's full state, so replaying a line twice is harmless (crash between
 * snapshot and journal rotation).
 */
import { link, mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { tryLockExclusive } from '../net/libc.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import type { LeaseLedger } from './lease-ledger.ts';
import type { Lease, LeasePool } from './leases.ts';

const ip = z.string().refine((s) => isIPv4(s), 'not an IPv4 address');
const mac = z.string().transform((s, ctx) => {
  const m = parseMac(s);
  if (!m) ctx.addIssue({ code: 'custom', message: `"${s}" is not a MAC` });
  return m as Mac;
});
/** One lease as kept outside the process (the file here, etcd in etcd-leases.ts), validated on read. */
export const LeaseRecord = z.object({
  ip,
  mac: mac.optional(),
  clientId: z
    .string()
    .regex(/^([0-9a-f]{2})+$/)
    .max(510)
    .optional(),
  hostname: z.string().max(255).optional(),
  state: z.enum(['bound', 'released', 'declined']),
  expires: z.number().int().nonnegative(),
});
const FreeRecord = z.object({ ip, free: z.literal(true) });
const JournalLine = z.union([FreeRecord, LeaseRecord]);
const Snapshot = z.object({ version: z.literal(1), leases: z.array(LeaseRecord) });

type Parsed = z.infer<typeof LeaseRecord>;

function toLease(r: Parsed): Lease {
  return { ip: r.ip, mac: r.mac, clientId: r.clientId, hostname: r.hostname, state: r.state, expires: r.expires };
}

type SnapshotRead = { kind: 'ok'; leases: Lease[]; bytes: number } | { kind: 'missing' } | { kind: 'broken'; reason: string };

export interface LeaseFileOptions {
  /** Fold the journal into a new snapshot once it is this big (and twice the snapshot). */
  compactBytes?: number;
}

export interface LeaseFileOpenResult {
  loaded: number;
  outside: number;
  /** Problems found and worked around (broken snapshot, torn journal tail…), each with its path. */
  problems: string[];
}

/** Another live process has the lease file: two servers on one file would hand one address to two clients. */
export class LeaseFileLockedError extends Error {}

export class LeaseFile implements LeaseLedger {
  readonly journalPath: string;
  readonly prevPath: string;
  readonly prevJournalPath: string;
  readonly lockPath: string;
  private readonly dir: string;
  /** The open lock file whose flock we hold; closing it is what releases the lock. */
  private lockHandle: FileHandle | undefined;
  private readonly compactBytes: number;
  private journal: FileHandle | undefined;
  private journalBytes = 0;
  private snapshotBytes = 0;
  /** Set after a failed append: the journal may end in a torn line, so the next write starts a new one. */
  private mustCompact = false;
  private tail: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;
  private closed = false;
  /** Journal appends (each one fdatasync) and snapshot rewrites so far; metrics and the group-commit test read them. */
  readonly stats = { appends: 0, compactions: 0, leasesWritten: 0 };

  constructor(
    readonly file: string,
    private readonly pool: LeasePool,
    private readonly log: Logger,
    options: LeaseFileOptions = {},
  ) {
    this.journalPath = `${file}.journal`;
    this.prevPath = `${file}.prev`;
    this.prevJournalPath = `${file}.journal.prev`;
    this.lockPath = `${file}.lock`;
    this.dir = path.dirname(file);
    this.compactBytes = options.compactBytes ?? 8 * 1024 * 1024;
  }

  get where(): string {
    return this.file;
  }

  /** Loads what is on disk into the pool (recovering from a broken snapshot), then starts a fresh snapshot + journal. */
  async open(): Promise<LeaseFileOpenResult> {
    await mkdir(this.dir, { recursive: true });
    await this.lock();
    try {
      const problems: string[] = [];
      const records = await this.recover(problems);
      const { loaded, outside } = this.pool.load(records.values());
      this.pool.takeChanges();
      await this.compactNow();
      return { loaded, outside, problems };
    } catch (err) {
      await this.journal?.close();
      this.journal = undefined;
      await this.unlock();
      throw err;
    }
  }

  /**
   * Resolves once every pool change made before the call is on disk. Calls that arrive while
   * a write is in flight share the next one: one fdatasync per group, not per lease.
   */
  commit(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('lease file is closed'));
    if (this.queued) return this.queued;
    const p = this.tail
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.write();
      });
    this.queued = p;
    this.tail = p;
    return p;
  }

  /** Writes what is pending, folds the journal into the snapshot, and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.commit().catch(() => undefined);
    await this.tail.catch(() => undefined);
    this.closed = true;
    try {
      await this.compactNow();
    } finally {
      await this.journal?.close();
      this.journal = undefined;
      await this.unlock();
    }
  }

  /**
   * flock(2)s `<file>.lock` for as long as this process uses the lease file. The kernel drops
   * the lock when the process ends, however it ends (kill -9, OOM, power loss leaves no
   * process), so there is never a stale lock to judge; and unlike a pid check it holds across
   * pid namespaces (two containers on one volume) and pid reuse. The file is never removed:
   * removing it would let a third process lock a new file while a second still holds the old.
   */
  private async lock(): Promise<void> {
    const fh = await open(this.lockPath, 'a+', 0o600);
    let taken: boolean;
    try {
      taken = tryLockExclusive(fh.fd);
    } catch (err) {
      await fh.close();
      throw new Error(`cannot lock ${this.lockPath}: ${(err as Error).message}`);
    }
    if (!taken) {
      const holder = (await readFile(this.lockPath, 'utf8').catch(() => '')).trim();
      await fh.close();
      throw new LeaseFileLockedError(
        `lease file ${this.file} is in use by another appliance${/^\d+$/.test(holder) ? ` (process ${holder})` : ''}: ${this.lockPath} is locked; refusing to share it: two servers on one lease file would hand one address to two clients`,
      );
    }
    // Only the holder writes: the pid is for the message above, never for deciding.
    await fh.truncate(0);
    await fh.write(`${process.pid}\n`, 0);
    this.lockHandle = fh;
  }

  private async unlock(): Promise<void> {
    const fh = this.lockHandle;
    this.lockHandle = undefined;
    await fh?.close().catch(() => undefined);
  }

  /** Closes the journal without writing anything more: what a crash leaves behind (tests), or a start that failed. */
  async abandon(): Promise<void> {
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.journal?.close();
    this.journal = undefined;
    await this.unlock();
  }

  private async write(): Promise<void> {
    // Taken synchronously before the first await: everything changed up to now is in this write.
    const changes = this.pool.takeChanges();
    if (changes.length === 0) return;
    if (this.mustCompact || (this.journalBytes > this.compactBytes && this.journalBytes > 2 * this.snapshotBytes)) {
      try {
        await this.compactNow();
      } catch (err) {
        this.pool.restoreChanges(changes);
        throw err;
      }
      return;
    }
    const buf = Buffer.from(changes.map((c) => `${JSON.stringify(c)}\n`).join(''), 'utf8');
    try {
      const handle = this.journal;
      if (!handle) throw new Error('lease journal is not open');
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await handle.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
      await handle.datasync();
      this.journalBytes += buf.length;
      this.stats.appends++;
      this.stats.leasesWritten += changes.length;
    } catch (err) {
      this.mustCompact = true;
      this.pool.restoreChanges(changes);
      throw err;
    }
  }

  /** New snapshot of the whole pool, the old one kept as .prev, the folded journal kept as .journal.prev. */
  private async compactNow(): Promise<void> {
    const snapshot = this.pool.snapshot();
    this.pool.takeChanges(); // all in the snapshot
    const data = Buffer.from(`${JSON.stringify({ version: 1, written: new Date().toISOString(), leases: snapshot })}\n`, 'utf8');
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Keep the current snapshot as the last good copy: a hard link, so there is no moment without leases.json.
    const prevTmp = `${this.prevPath}.tmp-${process.pid}`;
    try {
      await link(this.file, prevTmp);
      await rename(prevTmp, this.prevPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await rename(tmp, this.file);
    await this.journal?.close();
    this.journal = undefined;
    try {
      await rename(this.journalPath, this.prevJournalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.journal = await open(this.journalPath, 'a', 0o600);
    await this.syncDir();
    this.snapshotBytes = data.length;
    this.journalBytes = 0;
    this.mustCompact = false;
    this.stats.compactions++;
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  private async recover(problems: string[]): Promise<Map<string, Lease>> {
    const state = new Map<string, Lease>();
    const main = await this.readSnapshot(this.file);
    if (main.kind === 'ok' || main.kind === 'missing') {
      if (main.kind === 'ok') for (const l of main.leases) state.set(l.ip, l);
      await this.replay(this.journalPath, state, problems);
      return state;
    }
    // Broken (edited by hand, copied half, disk trouble): set it aside untouched and rebuild
    // from the last good snapshot plus the journals written since.
    const aside = `${this.file}.broken-${new Date().toISOString().replaceAll(':', '-')}`;
    await rename(this.file, aside);
    const problem = `${this.file}: ${main.reason}; kept as ${aside}, recovering from ${this.prevPath} and the journals`;
    problems.push(problem);
    this.log.error({ path: this.file, reason: main.reason, keptAs: aside }, 'lease file is broken; recovering from the last good copy');
    const prev = await this.readSnapshot(this.prevPath);
    if (prev.kind === 'ok') for (const l of prev.leases) state.set(l.ip, l);
    else {
      const why = prev.kind === 'missing' ? 'missing' : prev.reason;
      problems.push(`${this.prevPath}: ${why}`);
      this.log.error({ path: this.prevPath, reason: why }, 'last good lease file unusable too; only the journals are left');
    }
    await this.replay(this.prevJournalPath, state, problems);
    await this.replay(this.journalPath, state, problems);
    return state;
  }

  private async readSnapshot(file: string): Promise<SnapshotRead> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      return { kind: 'broken', reason: (err as Error).message };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return { kind: 'broken', reason: `not JSON (${(err as Error).message}; ${text.length} bytes)` };
    }
    const parsed = Snapshot.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return { kind: 'broken', reason: `${issue.path.join('.') || 'document'}: ${issue.message}` };
    }
    return { kind: 'ok', leases: parsed.data.leases.map(toLease), bytes: text.length };
  }

  /** Applies journal lines in order. A torn last line is a write that never finished (its ACK was never sent). */
  private async replay(file: string, state: Map<string, Lease>, problems: string[]): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const lines = text.split('\n');
    const last = lines.pop() ?? '';
    let bad = 0;
    for (const line of lines) {
      if (line === '') continue;
      let rec: z.infer<typeof JournalLine>;
      try {
        rec = JournalLine.parse(JSON.parse(line));
      } catch {
        bad++;
        continue;
      }
      if ('free' in rec && rec.free) state.delete(rec.ip);
      else state.set(rec.ip, toLease(rec as Parsed));
    }
    if (last !== '') {
      problems.push(`${file}: unfinished last line (${last.length} bytes) ignored`);
      this.log.warn({ path: file, bytes: last.length }, 'lease journal ends in an unfinished write; ignored (it was never acknowledged)');
    }
    if (bad) {
      problems.push(`${file}: ${bad} unreadable lines skipped`);
      this.log.error({ path: file, lines: bad }, 'lease journal has unreadable lines; skipped');
    }
  }
}
