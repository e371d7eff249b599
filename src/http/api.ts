import Router from '@koa/router';
import { z } from 'zod';
import type { BootEventDetails, BootStep } from '../events/boot-event.ts';
import { assessBoot, DEFAULT_RULES, type BootState, type ProgressRules } from '../events/progress.ts';
import type { BootTimeline, MachineRecord } from '../events/timeline.ts';
import type { Explanation } from '../explain.ts';
import { parseMacInput, type Mac } from '../net/mac.ts';
import { parseUuidInput, type Uuid } from '../net/uuid.ts';
import { fail } from './errors.ts';
import { named } from './request-info.ts';

/** One step as /api/machines shows it: the event with its time as ISO text. */
export type EventJson = { [S in BootStep]: { step: S; at: string; ip: string | null; detail: BootEventDetails[S]; appliance?: string | undefined } }[BootStep];

export interface MachineSummaryJson {
  mac: string;
  uuid: string | null;
  ip: string | null;
  firstSeen: string;
  lastSeen: string;
  lastStep: string | null;
  state: BootState;
  reason: string;
  eventCount: number;
  /** The fleet view (a shared store) only: the appliances that served this machine's steps, by --name. */
  appliances?: string[];
}

export interface MachineJson extends MachineSummaryJson {
  expected: string[];
  missingFiles: string[];
  events: EventJson[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export function summarize(m: MachineRecord, now: number, rules: ProgressRules): MachineSummaryJson {
  const p = assessBoot(m.events, now, rules);
  return {
    mac: m.mac,
    uuid: m.uuid ?? null,
    ip: m.ip ?? null,
    firstSeen: iso(m.firstSeen),
    lastSeen: iso(m.lastSeen),
    lastStep: p.lastStep ?? null,
    state: p.state,
    reason: p.reason,
    eventCount: m.events.length,
    ...appliancesOf(m),
  };
}

/** Only events of the fleet view carry an appliance: without a shared store the JSON is as it was. */
function appliancesOf(m: MachineRecord): { appliances?: string[] } {
  const names = new Set<string>();
  for (const e of m.events) if (e.appliance) names.add(e.appliance);
  return names.size ? { appliances: [...names] } : {};
}

export function describeMachine(m: MachineRecord, now: number, rules: ProgressRules): MachineJson {
  const p = assessBoot(m.events, now, rules);
  return {
    ...summarize(m, now, rules),
    expected: p.expected,
    missingFiles: p.missingFiles,
    events: m.events.map((e) => ({ ...e, at: iso(e.at), ip: e.ip ?? null }) as EventJson),
  };
}

const ListQuery = z.object({
  state: z.enum(['booting', 'stalled', 'failed', 'ignored', 'booted']).optional(),
});

const ExplainQuery = z.object({ mac: z.string().optional(), uuid: z.string().optional() });

export interface ApiDeps {
  timeline: Pick<BootTimeline, 'list' | 'get'>;
  /** The fleet's machines (fleet-view.ts) when the store is shared; the timeline's otherwise. */
  machines?: Pick<BootTimeline, 'list' | 'get'> | undefined;
  /** What explain says for a machine (the same answer as the CLI's). */
  explain: (machine: { mac: Mac | undefined; uuid: Uuid | undefined }) => Explanation;
}

export interface ApiOptions {
  rules?: ProgressRules;
  now?: () => number;
}

/**
 * GET /api/machines and /api/machines/:mac: the boot timeline as JSON, with the verdict
 * of progress.ts on each machine (the machines page renders exactly this); /api/explain.
 */
export function createApiRouter(deps: ApiDeps, options: ApiOptions = {}): Router {
  const rules = options.rules ?? DEFAULT_RULES;
  const now = options.now ?? Date.now;
  const router = new Router({ prefix: '/api' });

  // Dashboards poll this: their requests log at debug so they do not drown the boot log.
  router.use(
    named(
      'api',
      async (c, next) => {
        c.set('Cache-Control', 'no-store');
        await next();
      },
      { quiet: true },
    ),
  );

  router.get('/machines', (c) => {
    const q = ListQuery.safeParse(c.query);
    if (!q.success) fail(c, 400, { error: 'state must be one of booting, stalled, failed, ignored, booted' });
    const t = now();
    let machines = (deps.machines ?? deps.timeline).list().map((m) => summarize(m, t, rules));
    if (q.data.state) machines = machines.filter((m) => m.state === q.data.state);
    c.body = { now: iso(t), stallAfterSeconds: rules.stallAfterMs / 1000, machines };
  });

  router.get('/machines/:mac', (c) => {
    const parsed = parseMacInput(c.params.mac ?? '', 'mac');
    if (!parsed.ok) fail(c, 400, { error: parsed.reason });
    const machine = (deps.machines ?? deps.timeline).get(parsed.mac);
    if (!machine) fail(c, 404, { error: `no boot steps recorded for ${parsed.mac}`, mac: parsed.mac });
    c.body = describeMachine(machine, now(), rules);
  });

  router.get('/explain', (c) => {
    const q = ExplainQuery.safeParse(c.query);
    if (!q.success) fail(c, 400, { error: 'mac and uuid must each be given once' });
    let mac: Mac | undefined;
    let uuid: Uuid | undefined;
    if (q.data.mac) {
      const parsed = parseMacInput(q.data.mac, 'mac');
      if (!parsed.ok) fail(c, 400, { error: parsed.reason });
      mac = parsed.mac;
    }
    if (q.data.uuid) {
      const parsed = parseUuidInput(q.data.uuid, 'uuid');
      if (!parsed.ok) fail(c, 400, { error: parsed.reason });
      uuid = parsed.uuid;
    }
    if (!mac && !uuid) fail(c, 400, { error: 'give mac (and uuid if the machine reports one): /api/explain?mac=aa:bb:cc:dd:ee:ff&uuid=…' });
    c.body = deps.explain({ mac, uuid });
  });

  return router;
}
