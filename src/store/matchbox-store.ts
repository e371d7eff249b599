import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { ReloadLoop } from './reload-loop.ts';
import type { Service } from '../service.ts';
import { isIgnoredName, MAX_FILE_BYTES } from './data-files.ts';
import {
  hasTemplateSyntax,
  ignitionProblem,
  isIgnitionJsonName,
  type MatchboxGroup,
  type MatchboxLabels,
  type MatchboxProfile,
  matchGroup,
  parseMatchboxGroup,
  parseMatchboxProfile,
  type GroupMatch,
  templateKey,
} from './matchbox.ts';

/** The directories of the matchbox layout under --data-path. */
export const MATCHBOX_DIRS = ['groups', 'profiles', 'ignition', 'cloud', 'generic'] as const;
export type MatchboxDir = (typeof MATCHBOX_DIRS)[number];
export const TEMPLATE_DIRS = ['ignition', 'cloud', 'generic'] as const;
export type TemplateDir = (typeof TEMPLATE_DIRS)[number];

/** A template file's text, as loaded. */
export interface MatchboxTemplate {
  dir: TemplateDir;
  /** The name a profile gives it (its path under its directory). */
  name: string;
  path: string;
  text: string;
}

/**
 * What looking a profile or template up found:
 * - `ok`: a version that parsed answers (`stale` with the disk version's problem when that is broken);
 * - `missing`: no such file;
 * - `broken`: the file exists but never parsed (the caller answers 500 naming it).
 */
export type Found<T> = { state: 'ok'; value: T; path: string; stale?: string | undefined } | { state: 'missing'; path: string } | { state: 'broken'; path: string; problem: string };

/** A file of the matchbox layout that cannot be used (as `validate` and the logs report it). */
export interface MatchboxProblem {
  dir: MatchboxDir;
  path: string;
  reason: string;
  /** Whether an earlier good version keeps serving. */
  lastGoodServing: boolean;
}

/** matchGroup's answer over what the store serves, with the winner's profile looked up. */
export interface GroupSelection extends GroupMatch {
  labels: MatchboxLabels;
  /** The winning group's profile; undefined when no group won or it names none. */
  profile: Found<MatchboxProfile> | undefined;
  /**
   * Group files that never parsed: matchbox skips them; a caller that is about to answer
   * from a default (selector-less) group may rather refuse, since one of them may have been
   * meant for this machine.
   */
  unparsedGroups: { path: string; reason: string }[];
}

export interface MatchboxStoreOptions {
  log: Logger;
  metrics?: Metrics | undefined;
  /** Safety net behind the directory watchers (symlink targets, NFS, watcher limits). */
  pollIntervalMs?: number;
  /** Editors write a file in several syscalls; changes settle this long before a reload. */
  debounceMs?: number;
  /**
   * Why a template's text does not parse, or undefined. The wiring hands in the renderer's
   * parser (render/go-template.ts), which the store may not import; without it templates are
   * only read, and a syntax error shows when the template is rendered.
   */
  checkTemplate?: (name: string, text: string) => string | undefined;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: string };

interface Entry<T> {
  path: string;
  /** The last good version (undefined if the file never parsed). */
  value: T | undefined;
  valuePath: string | undefined;
  /** What is wrong with the file on disk now; undefined when the disk version serves. */
  problem: string | undefined;
}

interface Snapshot {
  groups: Map<string, Entry<MatchboxGroup>>;
  profiles: Map<string, Entry<MatchboxProfile>>;
  templates: { [D in TemplateDir]: Map<string, Entry<MatchboxTemplate>> };
}

function emptySnapshot(): Snapshot {
  return { groups: new Map(), profiles: new Map(), templates: { ignition: new Map(), cloud: new Map(), generic: new Map() } };
}

interface Listed {
  path: string;
  /** Under its directory, `/`-separated. */
  rel: string;
  signature: string | undefined;
  problem?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function readText(filePath: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(filePath);
  } catch (err) {
    throw new Error(`cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (bytes.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
  try {
    return utf8.decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new Error('not UTF-8 text');
  }
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

const signatureOf = (st: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number }) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

/**
 * The matchbox layout of --data-path (groups/, profiles/, ignition/, generic/, and the
 * cloud/ files profiles name), served from memory and kept in step with the disk the way
 * the FileStore does it: a watcher on each directory plus a slow poll, a short debounce, and
 * a file that stops parsing keeps its last good version serving while it is reported.
 */
export class MatchboxStore {
  private snapshot: Snapshot = emptySnapshot();
  private parsed = new Map<string, { signature: string; outcome: Outcome<unknown> }>();
  private problemList: MatchboxProblem[] = [];
  private reportedProblems = new Set<string>();
  private readonly log: Logger;
  private readonly loop: ReloadLoop;

  constructor(
    readonly dataPath: string,
    private readonly options: MatchboxStoreOptions,
  ) {
    this.log = options.log.child({ component: 'matchbox-store' });
    this.loop = new ReloadLoop({ scan: () => this.scanOnce(), log: this.log, pollIntervalMs: options.pollIntervalMs ?? 2000, debounceMs: options.debounceMs ?? 100, what: 'matchbox store' });
  }

  /** Whether the data directory holds any group or profile file (parsed or not): the matchbox layout is in use. */
  hasData(): boolean {
    return this.snapshot.groups.size > 0 || this.snapshot.profiles.size > 0;
  }

  /** The groups that serve (the last good version of a broken one), by file name. */
  groups(): MatchboxGroup[] {
    return [...this.snapshot.groups.values()].flatMap((e) => (e.value ? [e.value] : []));
  }

  /** The profile in profiles/<id>.json (matchbox finds a group's profile by file name). */
  profile(id: string): Found<MatchboxProfile> {
    return this.found(this.snapshot.profiles.get(id), path.join(this.dataPath, 'profiles', `${id}.json`));
  }

  /** The template a profile names, under its directory. */
  template(dir: TemplateDir, name: string): Found<MatchboxTemplate> {
    const key = templateKey(name);
    const expected = path.join(this.dataPath, dir, key ?? name);
    if (!key) return { state: 'missing', path: expected };
    return this.found(this.snapshot.templates[dir].get(key), expected);
  }

  /** matchbox's group selection over what serves now, plus the winner's profile. Pure: no disk access. */
  selectGroup(labels: MatchboxLabels): GroupSelection {
    const match = matchGroup(this.groups(), labels);
    const profileId = match.group?.profile;
    const unparsedGroups = [...this.snapshot.groups.values()].flatMap((e) => (e.value === undefined ? [{ path: e.path, reason: e.problem ?? 'unusable' }] : []));
    return { ...match, labels, profile: profileId ? this.profile(profileId) : undefined, unparsedGroups };
  }

  problems(): MatchboxProblem[] {
    return [...this.problemList];
  }

  open(): Promise<void> {
    return this.loop.open();
  }

  close(): Promise<void> {
    return this.loop.close();
  }

  /** Re-reads what changed on disk now; resolves once the new state serves. Concurrent calls coalesce. */
  reload(): Promise<void> {
    return this.loop.reload();
  }

  private found<T>(entry: Entry<T> | undefined, expected: string): Found<T> {
    if (!entry) return { state: 'missing', path: expected };
    if (entry.value === undefined) return { state: 'broken', path: entry.path, problem: entry.problem ?? 'unusable' };
    return { state: 'ok', value: entry.value, path: entry.valuePath ?? entry.path, stale: entry.problem };
  }

  /** Entries of one directory, or of its whole tree (`recursive`), sorted; directories seen go to `dirs` for watching. */
  private async list(dir: string, recursive: boolean, dirs: string[], rel = ''): Promise<Listed[]> {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return [];
    }
    dirs.push(dir);
    const out: Listed[] = [];
    for (const name of names) {
      if (isIgnoredName(name)) continue;
      const full = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await statOrUndefined(full);
      if (!st) out.push({ path: full, rel: r, signature: undefined, problem: 'dangling symlink or unreadable entry' });
      else if (st.isDirectory()) {
        if (recursive) out.push(...(await this.list(full, true, dirs, r)));
        else out.push({ path: full, rel: r, signature: undefined, problem: 'unexpected directory: matchbox reads <id>.json files at the top level only' });
      } else if (!st.isFile()) out.push({ path: full, rel: r, signature: undefined, problem: 'not a regular file' });
      else out.push({ path: full, rel: r, signature: signatureOf(st) });
    }
    return out;
  }

  private async scanOnce(): Promise<void> {
    const dirs: string[] = [];
    if ((await statOrUndefined(this.dataPath))?.isDirectory()) dirs.push(this.dataPath);
    const next = emptySnapshot();
    const nextParsed = new Map<string, { signature: string; outcome: Outcome<unknown> }>();
    const problems: MatchboxProblem[] = [];
    const fresh = new Set<string>();
    const changed = new Set<MatchboxDir>();

    const read = async <T>(file: Listed & { signature: string }, dir: MatchboxDir, parse: (text: string) => T): Promise<Outcome<T>> => {
      const before = this.parsed.get(file.path);
      let parsed = before;
      if (before?.signature !== file.signature) {
        let outcome: Outcome<unknown>;
        try {
          outcome = { ok: true, value: parse(await readText(file.path)) };
        } catch (err) {
          outcome = { ok: false, reason: (err as Error).message };
        }
        parsed = { signature: file.signature, outcome };
        fresh.add(file.path);
        changed.add(dir);
      }
      nextParsed.set(file.path, parsed!);
      return parsed!.outcome as Outcome<T>;
    };

    const judge = <T>(dir: MatchboxDir, key: string, file: Listed, outcome: Outcome<T> | undefined, prev: Entry<T> | undefined, target: Map<string, Entry<T>>) => {
      if (outcome?.ok) {
        target.set(key, { path: file.path, value: outcome.value, valuePath: file.path, problem: undefined });
        if (fresh.has(file.path)) this.log.info({ dir, path: file.path }, `matchbox ${dir} loaded: ${file.path}`);
        return;
      }
      const reason = outcome?.reason ?? file.problem ?? 'unusable';
      const lastGoodServing = prev?.value !== undefined;
      target.set(key, { path: file.path, value: prev?.value, valuePath: prev?.valuePath, problem: reason });
      problems.push({ dir, path: file.path, reason, lastGoodServing });
    };

    // groups/<id>.json and profiles/<id>.json: top level only, as matchbox's GroupList reads them.
    for (const dir of ['groups', 'profiles'] as const) {
      for (const file of await this.list(path.join(this.dataPath, dir), false, dirs)) {
        if (file.signature !== undefined && !file.rel.endsWith('.json')) {
          problems.push({ dir, path: file.path, reason: `not a .json file: matchbox reads ${dir}/<id>.json only`, lastGoodServing: false });
          continue;
        }
        const key = file.rel.replace(/\.json$/, '');
        const outcome =
          file.signature === undefined
            ? undefined
            : dir === 'groups'
              ? await read({ ...file, signature: file.signature }, dir, (t) => parseMatchboxGroup(t, key))
              : await read({ ...file, signature: file.signature }, dir, parseMatchboxProfile);
        if (dir === 'groups') judge(dir, key, file, outcome as Outcome<MatchboxGroup> | undefined, this.snapshot.groups.get(key), next.groups);
        else judge(dir, key, file, outcome as Outcome<MatchboxProfile> | undefined, this.snapshot.profiles.get(key), next.profiles);
      }
    }

    const parseTemplate =
      (dir: TemplateDir, name: string, filePath: string) =>
      (text: string): MatchboxTemplate => {
        const problem =
          dir === 'ignition' && isIgnitionJsonName(name) && !hasTemplateSyntax(text)
            ? ignitionProblem(text)
            : hasTemplateSyntax(text)
              ? this.options.checkTemplate?.(`${dir}/${name}`, text)
              : undefined;
        if (problem) throw new Error(problem);
        return { dir, name, path: filePath, text };
      };
    const loadTemplate = async (dir: TemplateDir, file: Listed) => {
      const outcome = file.signature === undefined ? undefined : await read({ ...file, signature: file.signature }, dir, parseTemplate(dir, file.rel, file.path));
      judge(dir, file.rel, file, outcome, this.snapshot.templates[dir].get(file.rel), next.templates[dir]);
    };
    // ignition/ and generic/ are matchbox's alone: every file in them is a template.
    for (const dir of ['ignition', 'generic'] as const) {
      for (const file of await this.list(path.join(this.dataPath, dir), true, dirs)) await loadTemplate(dir, file);
    }
    // cloud/ is shared with the seed layout: only the files a profile names are templates.
    const cloudDir = path.join(this.dataPath, 'cloud');
    if ((await statOrUndefined(cloudDir))?.isDirectory()) dirs.push(cloudDir);
    const cloudIds = new Set([...next.profiles.values()].flatMap((e) => (e.value?.cloud_id ? [templateKey(e.value.cloud_id)] : [])).filter((k): k is string => k !== undefined));
    for (const key of [...cloudIds].sort()) {
      const full = path.join(cloudDir, key);
      const st = await statOrUndefined(full);
      if (!st) continue; // a missing template is the route's 404, as in matchbox
      const parent = path.dirname(full);
      if (!dirs.includes(parent)) dirs.push(parent);
      await loadTemplate('cloud', { path: full, rel: key, signature: st.isFile() ? signatureOf(st) : undefined, problem: st.isFile() ? undefined : 'not a regular file' });
    }
    if (this.loop.closed) return;
    this.loop.watch(dirs);

    for (const p of this.parsed.keys()) {
      if (nextParsed.has(p)) continue;
      this.log.info({ path: p }, `matchbox file removed: ${p}`);
      const dir = MATCHBOX_DIRS.find((d) => p.startsWith(path.join(this.dataPath, d) + path.sep));
      if (dir) changed.add(dir);
    }
    const reported = new Set<string>();
    for (const p of problems) {
      const id = `${p.path}\0${p.reason}`;
      reported.add(id);
      if (this.reportedProblems.has(id)) continue;
      this.options.metrics?.storeErrors.inc({ kind: `matchbox/${p.dir}` });
      this.log.error(
        { dir: p.dir, path: p.path, reason: p.reason, lastGoodServing: p.lastGoodServing },
        `broken matchbox file ${p.path}: ${p.reason}${p.lastGoodServing ? ' (the last good version keeps serving)' : ''}`,
      );
    }
    this.reportedProblems = reported;
    this.parsed = nextParsed;
    this.snapshot = next;
    this.problemList = problems;
    for (const dir of changed) this.options.metrics?.storeReloads.inc({ kind: `matchbox/${dir}` });
    if (changed.size) {
      const t = next.templates;
      this.log.info(
        { groups: next.groups.size, profiles: next.profiles.size, ignition: t.ignition.size, cloud: t.cloud.size, generic: t.generic.size, problems: problems.length },
        `matchbox store loaded: ${next.groups.size} groups, ${next.profiles.size} profiles, ${t.ignition.size + t.cloud.size + t.generic.size} templates, ${problems.length} problem(s)`,
      );
    }
  }
}

/** Loads the matchbox layout before anything asks, and keeps it in step until stop. */
export function matchboxStoreService(store: Pick<MatchboxStore, 'open' | 'close'>): Service {
  return {
    name: 'matchbox-store',
    start: () => store.open(),
    stop: () => store.close(),
  };
}
