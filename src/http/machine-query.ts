import { z } from 'zod';
import { parseMac, type Mac } from '../net/mac.ts';
import { parseUuid, type Uuid } from '../net/uuid.ts';
import type { MachineQuery } from '../store/store.ts';

export const MAC_FORMS = '52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456 or 525400123456';

/**
 * A query parameter given once (Koa hands a repeated one over as an array, which the
 * string check refuses); at most 255 characters, which no MAC, UUID or hostname exceeds.
 */
const param = z.string({ error: (issue) => (Array.isArray(issue.input) ? 'given more than once' : 'must be text') }).max(255, 'longer than 255 characters').optional();

/** iPXE sends `uuid=` when it knows none, so an empty value means absent. */
function present(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** What /ipxe and /cloud accept; other parameters are ignored (boot scripts in the wild add their own). */
export const MachineQuerySchema = z
  .object({ uuid: param, mac: param, hostname: param, domain: param, serial: param })
  .transform((q, ctx) => {
    const macText = present(q.mac);
    const uuidText = present(q.uuid);
    const mac: Mac | undefined = macText === undefined ? undefined : parseMac(macText);
    const uuid: Uuid | undefined = uuidText === undefined ? undefined : parseUuid(uuidText);
    if (macText !== undefined && !mac) ctx.addIssue({ code: 'custom', path: ['mac'], message: `"${macText}" is not a MAC address (accepted forms: ${MAC_FORMS})` });
    if (uuidText !== undefined && !uuid) ctx.addIssue({ code: 'custom', path: ['uuid'], message: `"${uuidText}" is not a UUID (e.g. 1cff2cd8-f00a-42c8-9426-f55e6a1847f6)` });
    return { uuid, mac, hostname: present(q.hostname), domain: present(q.domain), serial: present(q.serial) };
  });

export type ParsedMachineQuery = z.output<typeof MachineQuerySchema>;

export type QueryOutcome = { ok: true; query: ParsedMachineQuery; machine: MachineQuery } | { ok: false; reason: string };

/** Validates a query string at the edge; the reason names the parameter and what is wrong with it. */
export function parseMachineQuery(query: Record<string, string | string[] | undefined>): QueryOutcome {
  const parsed = MachineQuerySchema.safeParse(query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: `${issue.path.join('.') || 'query'}: ${issue.message}` };
  }
  return { ok: true, query: parsed.data, machine: { uuid: parsed.data.uuid, mac: parsed.data.mac } };
}

export function parseMacParam(value: string): { ok: true; mac: Mac } | { ok: false; reason: string } {
  const mac = parseMac(value);
  return mac ? { ok: true, mac } : { ok: false, reason: `mac: "${value}" is not a MAC address (accepted forms: ${MAC_FORMS})` };
}
