import Router from '@koa/router';
import { z } from 'zod';
import type { AppContext } from '../appliance.ts';
import type { BootEvent, MachineRecord } from '../events/timeline.ts';
import { assessBoot, DEFAULT_RULES, type BootState, type ProgressRules } from '../events/progress.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import { parseUuid, type Uuid } from '../net/uuid.ts';
import { explain } from '../explain.ts';
import { bootSettingsFor } from '../boot/settings.ts';
import { requestInfo } from './request-log.ts';

export interface EventJson {
  step: BootEvent['step'];
  at: string;
  ip: string | null;
  detail: Record<string, unknown>;
}

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
  };
}

export function describeMachine(m: MachineRecord, now: number, rules: ProgressRules): MachineJson {
  const p = assessBoot(m.events, now, rules);
  return {
    ...summarize(m, now, rules),
    expected: p.expected,
    missingFiles: p.missingFiles,
    events: m.events.map((e) => ({ step: e.step, at: iso(e.at), ip: e.ip ?? null, detail: e.detail })),
  };
}

const ListQuery = z.object({
  state: z.enum(['booting', 'stalled', 'failed', 'ignored', 'booted']).optional(),
});

const ExplainQuery = z.object({ mac: z.string().optional(), uuid: z.string().optional() });

export interface ApiOptions {
  rules?: ProgressRules;
  now?: () => number;
}

/**
 * GET /api/machines and /api/machines/:mac: the boot timeline as JSON, with the verdict
 * of progress.ts on each machine (the machines page renders exactly this).
 */
export function createApiRouter(ctx: AppContext, options: ApiOptions = {}): Router {
  const rules = options.rules ?? DEFAULT_RULES;
  const now = options.now ?? Date.now;
  const router = new Router({ prefix: '/api' });

  router.use(async (c, next) => {
    // Dashboards poll this: their requests log at debug so they do not drown the boot log.
    const info = requestInfo(c);
    info.quiet = true;
    info.route = 'api';
    c.set('Cache-Control', 'no-store');
    await next();
  });

  router.get('/machines', (c) => {
    const q = ListQuery.safeParse(c.query);
    if (!q.success) {
      c.status = 400;
      c.body = { error: `state must be one of booting, stalled, failed, ignored, booted` };
      return;
    }
    const t = now();
    let machines = ctx.timeline.list().map((m) => summarize(m, t, rules));
    if (q.data.state) machines = machines.filter((m) => m.state === q.data.state);
    c.body = { now: iso(t), stallAfterSeconds: rules.stallAfterMs / 1000, machines };
  });

  router.get('/machines/:mac', (c) => {
    const raw = c.params.mac ?? '';
    const mac = parseMac(raw);
    if (!mac) {
      c.status = 400;
      c.body = { error: `"${raw.slice(0, 64)}" is not a MAC address (aa:bb:cc:dd:ee:ff, aa-bb-…, aabb.ccdd.eeff or 12 hex digits)` };
      return;
    }
    const machine = ctx.timeline.get(mac);
    if (!machine) {
      c.status = 404;
      c.body = { error: `no boot steps recorded for ${mac}`, mac };
      return;
    }
    c.body = describeMachine(machine, now(), rules);
  });

  router.get('/explain', (c) => {
    const q = ExplainQuery.safeParse(c.query);
    if (!q.success) {
      c.status = 400;
      c.body = { error: 'mac and uuid must each be given once' };
      return;
    }
    let mac: Mac | undefined;
    let uuid: Uuid | undefined;
    if (q.data.mac) {
      mac = parseMac(q.data.mac);
      if (!mac) {
        c.status = 400;
        c.body = { error: `"${q.data.mac.slice(0, 64)}" is not a MAC address` };
        return;
      }
    }
    if (q.data.uuid) {
      uuid = parseUuid(q.data.uuid);
      if (!uuid) {
        c.status = 400;
        c.body = { error: `"${q.data.uuid.slice(0, 64)}" is not a UUID` };
        return;
      }
    }
    if (!mac && !uuid) {
      c.status = 400;
      c.body = { error: 'give mac (and uuid if the machine reports one): /api/explain?mac=aa:bb:cc:dd:ee:ff&uuid=…' };
      return;
    }
    c.body = explain({
      mac,
      uuid,
      store: ctx.store,
      settings: bootSettingsFor(ctx.config, ctx.firmware),
      dhcpMode: ctx.config.dhcp.mode,
      serverAddress: ctx.config.advertisedAddress,
    });
  });

  return router;
}
