import { z } from 'zod';
import { parseMac, type Mac } from '../net/mac.ts';
import { parseUuid, type Uuid } from '../net/uuid.ts';
import type { MachineQuery } from '../store/store.ts';

export const MAC_FORMS = '52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456 or 525400123456';

/** A query parameter given once; iPXE sends `uuid=` when it knows none, so empty means absent. */
function single(name: string) {
  return z
    .union([z.string(), z.array(z.string())])
    .optional()
    .refine((v) => !Array.isArray(v), `${name} given more than once`)
    .transform((v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined));
}

export const macField = single('mac').transform((v, ctx): Mac | undefined => {
  if (v === undefined) return undefined;
  const mac = parseMac(v);
  if (!mac) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a MAC address (accepted forms: ${MAC_FORMS})` });
    return z.NEVER;
  }
  return mac;
});

export const uuidField = single('uuid').transform((v, ctx): Uuid | undefined => {
  if (v === undefined) return undefined;
  const uuid = parseUuid(v);
  if (!uuid) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a UUID (e.g. 1cff2cd8-f00a-42c8-9426-f55e6a1847f6)` });
    return z.NEVER;
  }
  return uuid;
});

const label = (name: string) =>
  single(name).refine((v) => v === undefined || v.length <= 255, `${name} is longer than 255 characters`);

/** What /ipxe and /cloud accept; other parameters are ignored (boot scripts in the wild add their own). */
export const MachineQuerySchema = z.object({
  uuid: uuidField,
  mac: macField,
  hostname: label('hostname'),
  domain: label('domain'),
  serial: label('serial'),
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
