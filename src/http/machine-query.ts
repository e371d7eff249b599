import type Koa from 'koa';
import { z } from 'zod';
import { parseMacInput, type Mac } from '../net/mac.ts';
import { parseUuidInput, type Uuid } from '../net/uuid.ts';
import type { MachineQuery } from '../store/store.ts';
import { fail } from './errors.ts';

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

/** The query, validated at the edge; a bad one ends the request with 400 naming the parameter and what is wrong with it. */
export function machineQuery(c: Koa.Context): { query: ParsedMachineQuery; machine: MachineQuery } {
  const parsed = MachineQuerySchema.safeParse(c.query);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const reason = issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
    fail(c, 400, `bad request: ${reason}`, reason);
  }
  return { query: parsed.data, machine: { uuid: parsed.data.uuid, mac: parsed.data.mac } };
}
