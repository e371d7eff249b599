/**
 * The matchbox data model, read as matchbox reads it (poseidon/matchbox, matchbox/storage and
 * matchbox/server), and the pure parts of using it: labels from a query, group selection, and
 * the data a template is rendered with.
 *
 *   <data>/profiles/<id>.json   what to boot and which templates a machine gets
 *   <data>/groups/<id>.json     which machines (selector) get which profile, with metadata
 *   <data>/ignition/<name>      Ignition configs (`.ign`, `.ignition`, `.json`), templates if they hold `{{`
 *   <data>/generic/<name>       any text, a template
 *   <data>/cloud/<name>         cloud-configs and scripts named by a profile's cloud_id
 *
 * `cloud/` is shared with the seed layout (`cloud/default`, `cloud/mac/…`, `cloud/uuid/…`,
 * served by /cloud from the FileStore). Only the files a profile names by `cloud_id` are
 * matchbox templates; the rest of `cloud/` stays the seed's, untemplated.
 */
import { z } from 'zod';
import { parseMac } from '../net/mac.ts';

/** A JSON value as a group's metadata holds it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const JsonValueSchema: z.ZodType<JsonValue> = z.lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonValueSchema), z.record(z.string(), JsonValueSchema)]));

/** Go's encoding/json takes `null` for a string field as "", and ignores fields it does not know (matchbox's old `cmdline`). */
const goString = z
  .string()
  .nullish()
  .transform((v) => v ?? '');
const goStrings = (what: string) =>
  z
    .array(z.string({ error: `${what} entries must be strings` }))
    .nullish()
    .transform((v) => v ?? []);

/** profiles/<id>.json (storagepb.Profile); `id` is required (Profile.AssertValid). */
export const MatchboxProfileSchema = z.object({
  id: z.string({ error: 'id is required' }).min(1, 'id is required'),
  name: goString,
  boot: z
    .object({ kernel: goString, initrd: goStrings('initrd'), args: goStrings('args') })
    .nullish()
    .transform((b) => b ?? { kernel: '', initrd: [], args: [] }),
  ignition_id: goString,
  cloud_id: goString,
  generic_id: goString,
});
export type MatchboxProfile = z.output<typeof MatchboxProfileSchema>;

/** groups/<id>.json (storagepb.RichGroup): metadata must be a JSON object, as matchbox unmarshals it into a map. */
export const MatchboxGroupSchema = z.object({
  id: goString,
  name: goString,
  profile: goString,
  selector: z
    .record(z.string(), z.string({ error: 'selector values must be strings' }))
    .nullish()
    .transform((v) => v ?? {}),
  metadata: z
    .record(z.string(), JsonValueSchema)
    .nullish()
    .transform((v) => v ?? {}),
});

export interface MatchboxGroup {
  /** The group's `id`, or its file name without `.json` when the file gives none. */
  id: string;
  name: string;
  /** The profile's file name under profiles/ (without `.json`); may be empty (then only /metadata answers). */
  profile: string;
  /** Selector values as matched: a `mac` (any case of the key) in canonical form. */
  selector: Record<string, string>;
  metadata: { [key: string]: JsonValue };
}

function issuesText(error: z.ZodError): string {
  return error.issues.map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
}

function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`);
  }
}

/** Parses a profile file's text; throws an Error whose message names the field at fault. */
export function parseMatchboxProfile(text: string): MatchboxProfile {
  const parsed = MatchboxProfileSchema.safeParse(parseJsonText(text));
  if (!parsed.success) throw new Error(issuesText(parsed.error));
  return parsed.data;
}

/**
 * Parses a group file's text. A `mac` selector is normalised as matchbox's Group.Normalize
 * does (the key compared in any case, the value to the canonical form); one that is not a MAC
 * makes the group unusable, as there.
 */
export function parseMatchboxGroup(text: string, fileId: string): MatchboxGroup {
  const parsed = MatchboxGroupSchema.safeParse(parseJsonText(text));
  if (!parsed.success) throw new Error(issuesText(parsed.error));
  const selector: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed.data.selector)) {
    if (key.toLowerCase() !== 'mac') {
      selector[key] = value;
      continue;
    }
    const mac = parseMac(value);
    if (!mac) throw new Error(`selector.${key}: "${value.slice(0, 64)}" is not a MAC address`);
    selector[key] = mac;
  }
  const { id, name, profile, metadata } = parsed.data;
  return { id: id || fileId, name, profile, selector, metadata };
}

// ---------------------------------------------------------------------------------------
// Labels

/** What the machine said about itself: every query parameter, `mac` normalised. */
export type MatchboxLabels = Readonly<Record<string, string>>;

export interface IgnoredLabel {
  key: string;
  value: string;
  reason: string;
}

/**
 * Labels from a parsed query string, as matchbox's labelsFromRequest makes them: every
 * parameter is a label under its own name; a repeated one counts by its first value; a `mac`
 * (key in any case) is kept only when it parses, in canonical form (matchbox logs and drops
 * an unparseable one, so `mac=` from an iPXE without one is simply absent).
 */
export function labelsFromQuery(query: Readonly<Record<string, string | readonly string[] | undefined>>): { labels: MatchboxLabels; ignored: IgnoredLabel[] } {
  const labels: Record<string, string> = {};
  const ignored: IgnoredLabel[] = [];
  for (const [key, raw] of Object.entries(query)) {
    const value = typeof raw === 'string' ? raw : raw?.[0];
    if (value === undefined) continue;
    if (key.toLowerCase() === 'mac') {
      const mac = parseMac(value);
      if (mac) labels[key] = mac;
      else ignored.push({ key, value, reason: `"${value.slice(0, 64)}" is not a MAC address` });
      continue;
    }
    labels[key] = value;
  }
  return { labels, ignored };
}

/** One line naming the machine in logs and error bodies: its labels, sorted. */
export function describeLabels(labels: MatchboxLabels): string {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return 'a machine that sent no labels';
  return keys.map((k) => `${k}=${labels[k]}`).join(' ');
}

// ---------------------------------------------------------------------------------------
// Selection

/** A selector the machine's labels did not satisfy. */
export interface SelectorMismatch {
  key: string;
  want: string;
  /** What the machine sent; undefined when it did not send the label. */
  got: string | undefined;
}

export interface LosingGroup {
  group: MatchboxGroup;
  /** The selectors that differed; empty when every one matched but a group tried earlier won. */
  mismatches: SelectorMismatch[];
  /** Every selector matched, but the winner was tried first (more selectors, or the tie-break). */
  outranked: boolean;
}

export interface GroupMatch {
  /** The group that answers, undefined when none matched (matchbox: "No matching Group", 404). */
  group: MatchboxGroup | undefined;
  /** Every other group, in the order they were tried. */
  losers: LosingGroup[];
  /** Every group in the order matchbox tries them. */
  order: MatchboxGroup[];
}

/**
 * Groups in the order matchbox tries them (server.SelectGroup: sort.Reverse(ByReqs)): most
 * selectors first; equal counts by their sorted `key=value` pairs joined with `,`, compared
 * bytewise, the greater first. Groups whose selectors are identical are ambiguous in matchbox
 * (its sort is not stable); here the lower group id wins so the answer never changes between
 * reloads, and `validate` should flag them.
 */
export function matchOrder(groups: readonly MatchboxGroup[]): MatchboxGroup[] {
  const selectorString = (g: MatchboxGroup) =>
    Buffer.from(
      Object.entries(g.selector)
        .map(([k, v]) => `${k}=${v}`)
        .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        .join(','),
    );
  const keyed = groups.map((g) => ({ g, count: Object.keys(g.selector).length, reqs: selectorString(g), id: Buffer.from(g.id) }));
  keyed.sort((a, b) => b.count - a.count || Buffer.compare(b.reqs, a.reqs) || Buffer.compare(a.id, b.id));
  return keyed.map((k) => k.g);
}

/**
 * The selectors of `group` that `labels` do not satisfy. As in Group.Matches, a label the
 * machine did not send compares as "" (so a selector `"os": ""` matches a machine without `os`).
 */
export function selectorMismatches(group: MatchboxGroup, labels: MatchboxLabels): SelectorMismatch[] {
  const out: SelectorMismatch[] = [];
  for (const key of Object.keys(group.selector).sort()) {
    const want = group.selector[key]!;
    const got = Object.hasOwn(labels, key) ? labels[key] : undefined;
    if ((got ?? '') !== want) out.push({ key, want, got });
  }
  return out;
}

/** matchbox's selection: the first group, in matchOrder, whose selectors all equal the labels. A group without selectors matches every machine. */
export function matchGroup(groups: readonly MatchboxGroup[], labels: MatchboxLabels): GroupMatch {
  const order = matchOrder(groups);
  let winner: MatchboxGroup | undefined;
  const losers: LosingGroup[] = [];
  for (const group of order) {
    const mismatches = selectorMismatches(group, labels);
    if (!winner && !mismatches.length) {
      winner = group;
      continue;
    }
    losers.push({ group, mismatches, outranked: !mismatches.length });
  }
  return { group: winner, losers, order };
}

/** One loser as explain and logs word it. */
export function describeLoser(loser: LosingGroup): string {
  if (loser.outranked) return `groups/${loser.group.id}: matched, but a group tried before it won`;
  const why = loser.mismatches.map((m) => `${m.key} is ${m.got === undefined ? 'not given' : JSON.stringify(m.got)}, selector wants ${JSON.stringify(m.want)}`).join('; ');
  return `groups/${loser.group.id}: ${why}`;
}

// ---------------------------------------------------------------------------------------
// Template data

/**
 * What a template sees, as matchbox's collectVariables builds it (matchbox/http/parse.go):
 * the group's metadata at the top level; each selector under its key lower-cased (over a
 * metadata key of the same name); and `request` = { query: the labels, raw_query: the query
 * string as sent } (over any metadata `request`).
 */
export function templateData(group: Pick<MatchboxGroup, 'selector' | 'metadata'>, labels: MatchboxLabels, rawQuery: string): { [key: string]: JsonValue } {
  const data: { [key: string]: JsonValue } = { ...structuredClone(group.metadata) };
  for (const [key, value] of Object.entries(group.selector)) data[key.toLowerCase()] = value;
  data.request = { query: { ...labels }, raw_query: rawQuery };
  return data;
}

/** Template names are file names under their directory; `..` cannot leave it (matchbox's Dir.sanitize cleans `"/" + name`). */
export function templateKey(name: string): string | undefined {
  if (name === '' || name.includes('\0')) return undefined;
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.length ? parts.join('/') : undefined;
}

/** Whether an Ignition template is served as Ignition JSON (matchbox: `.ign`, `.ignition`; here also `.json`); anything else is Butane, which needs translating. */
export function isIgnitionJsonName(name: string): boolean {
  return /\.(ign|ignition|json)$/.test(name);
}

/** Why an Ignition text is not a usable Ignition config (JSON object with `ignition.version`), or undefined. */
export function ignitionProblem(text: string): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return `not valid JSON: ${(err as Error).message}`;
  }
  const version = (json as { ignition?: { version?: unknown } } | null)?.ignition?.version;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not a JSON object';
  if (typeof version !== 'string' || version === '') return 'no ignition.version: an Ignition config must say which spec version it is';
  return undefined;
}

/** Whether a file holds template actions; one without is served exactly as written. */
export function hasTemplateSyntax(text: string): boolean {
  return text.includes('{{');
}
