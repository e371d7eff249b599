import type Koa from 'koa';
import { z } from 'zod';
import { parseMacInput, type Mac } from '../net/mac.ts';
import { parseUuidInput, type Uuid } from '../net/uuid.ts';
import type { BootTimeline } from '../events/timeline.ts';
import type { BootConfig } from '../store/boot-config.ts';
import { labelsFromQuery } from '../store/matchbox.ts';
import type { LookupResult, MachineQuery, Store } from '../store/store.ts';
import { failure } from './errors.ts';
import type { LeanRequest } from './lean-path.ts';
import { noteLookup } from './lookup-response.ts';

/**
 * A query parameter given once (Koa hands a repeated one over as an array, which the
 * string check refuses); at most 255 characters, which no MAC, UUID or hostname exceeds.
 */
const param = z
  .string({ error: (issue) => (Array.isArray(issue.input) ? 'given more than once' : 'must be text') })
  .max(255, 'longer than 255 characters')
  .optional();

/** iPXE sends `uuid=` when it knows none, so an empty value means absent. */
function present(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** What /ipxe and /cloud accept; other parameters are ignored (boot scripts in the wild add their own). */
export const MachineQuerySchema = z.object({ uuid: param, mac: param, hostname: param, domain: param, serial: param }).transform((q, ctx) => {
  const macText = present(q.mac);
  const uuidText = present(q.uuid);
  let mac: Mac | undefined;
  let uuid: Uuid | undefined;
  if (macText !== undefined) {
    const parsed = parseMacInput(macText, 'mac');
    if (parsed.ok) mac = parsed.mac;
    else ctx.addIssue({ code: 'custom', path: [], message: parsed.reason });
  }
  if (uuidText !== undefined) {
    const parsed = parseUuidInput(uuidText, 'uuid');
    if (parsed.ok) uuid = parsed.uuid;
    else ctx.addIssue({ code: 'custom', path: [], message: parsed.reason });
  }
  return { uuid, mac, hostname: present(q.hostname), domain: present(q.domain), serial: present(q.serial) };
});

export type ParsedMachineQuery = z.output<typeof MachineQuerySchema>;

/** A query string parsed as Koa's `c.query` is: a repeated parameter becomes an array. */
export type RawQuery = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The query, validated at the edge; a bad one ends the request with 400 naming the parameter and what is wrong with it. */
export function parseMachineQuery(raw: RawQuery): { query: ParsedMachineQuery; machine: MachineQuery } {
  const query = acceptedAsIs(raw);
  if (query !== undefined) return { query, machine: { uuid: query.uuid, mac: query.mac } };
  const parsed = MachineQuerySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const reason = issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
    failure(400, `bad request: ${reason}`, reason);
  }
  return { query: parsed.data, machine: { uuid: parsed.data.uuid, mac: parsed.data.mac } };
}

const isParam = (v: string | readonly string[] | undefined): v is string | undefined => v === undefined || (typeof v === 'string' && v.length <= 255);

/**
 * MachineQuerySchema's result without zod, for the query it accepts as it is: each of its five
 * parameters absent or given once, at most 255 characters, the MAC and UUID valid, as iPXE's
 * always are. zod was ~1.5 µs of each /ipxe (bench/http/README.md). Anything else goes through
 * zod, which words the error; test/http/machine-query.test.ts compares both results.
 */
export function acceptedAsIs(raw: RawQuery): ParsedMachineQuery | undefined {
  const { uuid: uuidRaw, mac: macRaw, hostname, domain, serial } = raw;
  if (!isParam(uuidRaw) || !isParam(macRaw) || !isParam(hostname) || !isParam(domain) || !isParam(serial)) return undefined;
  const macText = present(macRaw);
  const uuidText = present(uuidRaw);
  let mac: Mac | undefined;
  let uuid: Uuid | undefined;
  if (macText !== undefined) {
    const parsed = parseMacInput(macText, 'mac');
    if (!parsed.ok) return undefined;
    mac = parsed.mac;
  }
  if (uuidText !== undefined) {
    const parsed = parseUuidInput(uuidText, 'uuid');
    if (!parsed.ok) return undefined;
    uuid = parsed.uuid;
  }
  return { uuid, mac, hostname: present(hostname), domain: present(domain), serial: present(serial) };
}

/** parseMachineQuery of a Koa request (/cloud). */
export function machineQuery(c: Koa.Context): { query: ParsedMachineQuery; machine: MachineQuery } {
  return parseMachineQuery(c.query);
}

/**
 * What /ipxe and /grub do first: validate the query, name the machine in the log line, tie the
 * address to its MAC (the machine fetches its own script, so its downloads, which carry no MAC,
 * are its own from now on) and look its boot config up, every query parameter a label for
 * matchbox groups' selectors (boot-lookup.ts).
 */
export function lookupRequester(
  r: LeanRequest,
  store: Pick<Store, 'boot'>,
  timeline: Pick<BootTimeline, 'bindAddress'>,
): { query: ParsedMachineQuery; machine: MachineQuery; result: LookupResult<BootConfig> } {
  const { machine, query } = parseMachineQuery(r.query);
  r.info.mac = machine.mac;
  r.info.uuid = machine.uuid;
  if (machine.mac) timeline.bindAddress(r.ip, machine.mac);
  const result = store.boot(lookupQuery(machine, r.query, r.querystring));
  noteLookup(r.info, result);
  return { query, machine, result };
}

/**
 * The machine as the store looks it up, every query parameter a label: the labels are made
 * when a lookup reads them (boot-lookup.ts, only when matchbox groups exist), not per request.
 */
class LabelledQuery implements MachineQuery {
  private made: MachineQuery['labels'];

  constructor(
    readonly uuid: Uuid | undefined,
    readonly mac: Mac | undefined,
    readonly rawQuery: string,
    private readonly raw: RawQuery,
  ) {}

  get labels(): MachineQuery['labels'] {
    this.made ??= labelsFromQuery(this.raw).labels;
    return this.made;
  }
}

export function lookupQuery(machine: MachineQuery, raw: RawQuery, rawQuery: string): MachineQuery {
  return new LabelledQuery(machine.uuid, machine.mac, rawQuery, raw);
}
