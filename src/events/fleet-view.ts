/**
 * Every machine of the fleet in one timeline: this appliance's own (its BootTimeline, the
 * truth for what it served) merged with what the other appliances publish under
 * `<prefix>/fleet/<name>/` (fleet-publisher.ts), each step tagged with the --name of the
 * appliance that served it. /api/machines and the page read this instead of the local
 * timeline when the store is shared; progress.ts then judges a boot whose DHCP came from one
 * appliance and whose kernel from another as the one boot it is.
 *
 * Read once at start, then watched; a key that goes away (its appliance's lease expired, or
 * it was stopped) takes its machine out. Bounded like the timeline: the machines seen least
 * recently are forgotten first.
 */
import type { IKeyValue, Namespace, Watcher } from 'etcd3';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import { parseMac, type Mac } from '../net/mac.ts';
import { parseUuid } from '../net/uuid.ts';
import type { Service } from '../service.ts';
import { LruMap } from '../util/lru-map.ts';
import type { BootEvent, BootStep } from './boot-event.ts';
import type { BootTimeline, MachineRecord } from './timeline.ts';

const STEPS = [
  'dhcp.request',
  'dhcp.reply',
  'dhcp.ignored',
  'pxe.request',
  'pxe.reply',
  'tftp.start',
  'tftp.end',
  'http.boot-script',
  'http.ipxe',
  'http.cloud',
  'http.pixiecore',
  'http.image',
  'grub.config',
] as const satisfies readonly BootStep[];

// A compile error here when a step is added to boot-event.ts and not to STEPS.
type Missing = Exclude<BootStep, (typeof STEPS)[number]>;
const allSteps: [Missing] extends [never] ? true : Missing = true;
void allSteps;

const EventSchema = z.object({
  step: z.enum(STEPS),
  at: z.number().finite(),
  ip: z.string().max(64).optional(),
  // Written by our own appliances; each step's detail is an object of its type there.
  detail: z.record(z.string(), z.unknown()),
});

const MachineSchema = z.object({
  appliance: z.string().min(1).max(63),
  mac: z.string(),
  uuid: z.string().max(64).optional(),
  ip: z.string().max(64).optional(),
  firstSeen: z.number().finite(),
  lastSeen: z.number().finite(),
  events: z.array(EventSchema).max(1000),
});

export interface FleetViewOptions {
  /** --name: our own entries are the local timeline's, never read back. */
  name: string;
  /** Remote machine records kept (one per appliance and machine). */
  capacity?: number;
}

export interface FleetViewDeps {
  /** The client scoped to `<prefix>/fleet/`: keys are `<name>/<mac>`. */
  etcd: Namespace;
  timeline: Pick<BootTimeline, 'list' | 'get'>;
  log: Logger;
}

type RemoteRecord = MachineRecord & { appliance: string };

interface Part {
  name: string;
  record: MachineRecord;
}

export class FleetView implements Service, Pick<BootTimeline, 'list' | 'get'> {
  readonly name = 'fleet-view';
  /** `<name>/<mac>` → that appliance's record of the machine, events tagged. */
  private readonly remote: LruMap<string, RemoteRecord>;
  /** The keys of each machine, so a lookup does not scan the fleet. */
  private readonly byMac = new Map<Mac, Set<string>>();
  private watcher: Watcher | undefined;
  private unreadable = 0;
  private stopped = false;

  constructor(
    private readonly options: FleetViewOptions,
    private readonly deps: FleetViewDeps,
  ) {
    this.remote = new LruMap(options.capacity ?? 16_384, (key, r) => this.unindex(key, r.mac));
  }

  /** Reads what is there and watches from that revision; an etcd outage at start leaves the view local and retries by itself. */
  async start(): Promise<void> {
    this.stopped = false;
    void this.load();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.watcher;
    this.watcher = undefined;
    await w?.cancel().catch(() => undefined);
  }

  private async load(): Promise<void> {
    const { etcd, log } = this.deps;
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const res = await etcd.getAll().exec();
        for (const kv of res.kvs) this.put(kv);
        const next = (BigInt(res.header.revision) + 1n).toString();
        const watcher = await etcd.watch().prefix('').startRevision(next).create();
        watcher.on('put', (kv) => this.put(kv));
        watcher.on('delete', (kv) => this.drop(kv.key.toString('utf8')));
        watcher.on('error', (err) => log.warn({ err: err.message }, 'fleet view watch failed; reconnecting'));
        if (this.stopped) await watcher.cancel();
        else this.watcher = watcher;
        return;
      } catch (err) {
        if (attempt === 0) log.warn({ err: (err as Error).message }, 'fleet view not read from etcd yet (unreachable?): showing this appliance only, retrying');
        await new Promise((r) => setTimeout(r, 2000).unref());
      }
    }
  }

  private put(kv: IKeyValue): void {
    const key = kv.key.toString('utf8');
    const [name] = key.split('/');
    if (name === this.options.name) return;
    let json: unknown;
    try {
      json = JSON.parse(kv.value.toString('utf8'));
    } catch {
      json = undefined;
    }
    const parsed = MachineSchema.safeParse(json);
    const mac = parsed.success ? parseMac(parsed.data.mac) : undefined;
    if (!parsed.success || !mac || parsed.data.appliance !== name) {
      // Logged once per start: a broken writer would otherwise log per machine per flush.
      if (this.unreadable++ === 0) this.deps.log.warn({ key }, 'unreadable fleet entry in etcd: not shown');
      return;
    }
    const d = parsed.data;
    // The step is checked, its detail only as an object: it is what our own recorder wrote for that step.
    const events = d.events.map((e) => ({ ...e, appliance: d.appliance }) as unknown as BootEvent);
    this.drop(key);
    this.remote.set(key, { appliance: d.appliance, mac, uuid: d.uuid ? parseUuid(d.uuid) : undefined, ip: d.ip, firstSeen: d.firstSeen, lastSeen: d.lastSeen, events });
    const keys = this.byMac.get(mac) ?? new Set<string>();
    keys.add(key);
    this.byMac.set(mac, keys);
  }

  private drop(key: string): void {
    const r = this.remote.get(key);
    if (!r) return;
    this.remote.delete(key);
    this.unindex(key, r.mac);
  }

  private unindex(key: string, mac: Mac): void {
    const keys = this.byMac.get(mac);
    keys?.delete(key);
    if (keys?.size === 0) this.byMac.delete(mac);
  }

  get(mac: Mac): MachineRecord | undefined {
    const parts: Part[] = [];
    const local = this.deps.timeline.get(mac);
    if (local) parts.push({ name: this.options.name, record: local });
    for (const key of this.byMac.get(mac) ?? []) {
      const r = this.remote.get(key);
      if (r) parts.push({ name: r.appliance, record: r });
    }
    return merge(parts);
  }

  /** Most recently seen first, like the timeline's list. */
  list(): MachineRecord[] {
    const macs = new Set<Mac>();
    for (const m of this.deps.timeline.list()) macs.add(m.mac);
    for (const mac of this.byMac.keys()) macs.add(mac);
    const out: MachineRecord[] = [];
    for (const mac of macs) {
      const m = this.get(mac);
      if (m) out.push(m);
    }
    return out.sort((a, b) => b.lastSeen - a.lastSeen);
  }
}

/** One machine from every appliance's record of it: steps in time order, each with who served it. */
function merge(parts: Part[]): MachineRecord | undefined {
  if (!parts.length) return undefined;
  const latest = [...parts].sort((a, b) => b.record.lastSeen - a.record.lastSeen);
  const events = parts.flatMap(({ name, record }) => record.events.map((e) => (e.appliance ? e : { ...e, appliance: name })));
  events.sort((a, b) => a.at - b.at);
  return {
    mac: latest[0]!.record.mac,
    uuid: latest.find((p) => p.record.uuid)?.record.uuid,
    ip: latest.find((p) => p.record.ip)?.record.ip,
    firstSeen: Math.min(...parts.map((p) => p.record.firstSeen)),
    lastSeen: latest[0]!.record.lastSeen,
    events,
  };
}
