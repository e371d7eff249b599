import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';
import type { BootConfig } from './boot-config.ts';

/** The two kinds of data a machine is looked up for, each in its own directory under --data-path. */
export const CONFIG_KINDS = ['boot', 'cloud'] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];

/** What a machine said about itself; either may be missing (iPXE leaves ${uuid} empty on some boards). */
export interface MachineQuery {
  uuid?: Uuid | undefined;
  mac?: Mac | undefined;
  /**
   * Every label the request carried (its query parameters), for matchbox groups' selectors;
   * the seed layout looks at uuid and mac only. Absent: the labels are uuid and mac.
   */
  labels?: Readonly<Record<string, string>> | undefined;
  /** The query string as sent (matchbox templates' `.request.raw_query`). */
  rawQuery?: string | undefined;
}

/** The cloud config is served as the file's text, whatever format the booted OS expects. */
export interface CloudConfig {
  text: string;
}

/**
 * One place a lookup looked, in order: `uuid/<uuid>`, then `mac/<mac>`, then `default`.
 * - `hit`: a file answered (`stale` when the file on disk is broken and its last good
 *   version answered instead; `problem` says what is wrong with the disk version).
 * - `miss`: no file for that key.
 * - `broken`: a file exists but never parsed; the lookup stops there rather than fall
 *   through to a less specific config (a typo must not boot a machine into `default`).
 */
export interface LookupStep {
  key: string;
  outcome: 'hit' | 'miss' | 'broken';
  /** Absolute path of the file that answered or is broken. */
  path?: string;
  stale?: boolean;
  problem?: string;
}

export interface LookupResult<T> {
  kind: ConfigKind;
  query: MachineQuery;
  /** The config that answered; undefined on a miss everywhere or a broken file. */
  value: T | undefined;
  /** The step that decided the outcome (a hit or a broken file); undefined when every step missed. */
  decidedBy: LookupStep | undefined;
  steps: LookupStep[];
}

/** A data file that could not be used, as `validate` and the logs report it. */
export interface StoreProblem {
  kind: ConfigKind;
  path: string;
  reason: string;
  /** Whether an earlier good version of the same key keeps serving. */
  lastGoodServing: boolean;
}

/** Read side of the configs: lookups come from memory, never a disk scan per request. */
export interface Store {
  readonly dataPath: string;
  boot(query: MachineQuery): LookupResult<BootConfig>;
  cloud(query: MachineQuery): LookupResult<CloudConfig>;
  /** Files currently rejected (bad content, bad name, duplicates). */
  problems(): StoreProblem[];
  /** Loads everything and starts noticing changes. */
  open(): Promise<void>;
  close(): Promise<void>;
}

/** The keys a query is looked up under, most specific first. */
export function lookupKeys(query: MachineQuery): string[] {
  const keys: string[] = [];
  if (query.uuid) keys.push(`uuid/${query.uuid}`);
  if (query.mac) keys.push(`mac/${query.mac}`);
  keys.push('default');
  return keys;
}

/** One line for logs and 404 bodies: what was looked up where, and what each step found. */
export function describeLookup(result: LookupResult<unknown>, dataPath: string): string {
  const who = [result.query.uuid ? `uuid=${result.query.uuid}` : '', result.query.mac ? `mac=${result.query.mac}` : ''].filter(Boolean).join(' ');
  const steps = result.steps
    .map((s) => {
      const where = `${result.kind}/${s.key}`;
      if (s.outcome === 'miss') return `${where} (no file)`;
      if (s.outcome === 'broken') return `${where} (${s.path}: broken: ${s.problem})`;
      return `${where} (${s.path}${s.stale ? `, last good version; on disk: ${s.problem}` : ''})`;
    })
    .join(', ');
  return `${result.kind} config for ${who || 'a machine that gave no uuid or mac'}: looked up ${steps} in ${dataPath}`;
}
