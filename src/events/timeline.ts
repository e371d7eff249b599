import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';
import { LruMap } from '../util/lru-map.ts';
import type { BootEvent, BootEventInput } from './boot-event.ts';

export type { BootEvent, BootEventInput, BootStep } from './boot-event.ts';

export interface MachineRecord {
  mac: Mac;
  uuid: Uuid | undefined;
  ip: string | undefined;
  firstSeen: number;
  lastSeen: number;
  events: BootEvent[];
}

export interface TimelineLimits {
  machines: number;
  eventsPerMachine: number;
  /**
   * Events held over all machines. Without it the bound would be machines × eventsPerMachine
   * (3.3 million events, gigabytes), reached by a rack that reboots in a loop; past it the
   * machine seen least recently is forgotten, as when `machines` is reached.
   */
  events: number;
}

/**
 * A site of 10,000 machines booting at once fits (bench/memory: ~37 MiB with their leases);
 * a stream of new MACs beyond that forgets the machines seen least recently. The boot counter
 * and the stall watch keep per-machine state for as many.
 */
export const DEFAULT_TIMELINE_LIMITS: TimelineLimits = { machines: 16_384, eventsPerMachine: 200, events: 262_144 };

/** Why a machine was forgotten: more machines than the bound, or more events over all machines. */
export type EvictionReason = 'machines' | 'events';

export interface TimelineSize {
  machines: number;
  events: number;
  addresses: number;
}

export type BootEventListener = (mac: Mac, event: BootEvent) => void;

/** Addresses kept per machine the timeline holds: full DHCP binds the address of every client, booting or not. */
const ADDRESSES_PER_MACHINE = 4;

/**
 * Per-machine boot events in bounded memory: the machine seen least recently is forgotten
 * first, and each machine keeps only its latest events (past `eventsPerMachine`, the oldest
 * eighth of them go), so a rack booting in a loop cannot grow the process.
 */
export class BootTimeline {
  private readonly machines: LruMap<Mac, MachineRecord>;
  private readonly macByIp: LruMap<string, Mac>;
  private readonly listeners = new Set<BootEventListener>();
  /** Events held over all machines (limits.events bounds it). */
  private eventCount = 0;
  /** What the next eviction is reported as: set while the event budget, not the machine count, evicts. */
  private evicting: EvictionReason = 'machines';
  private readonly limits: TimelineLimits;

  constructor(
    limits: Partial<TimelineLimits> = {},
    private readonly now: () => number = Date.now,
    /** Told of every machine forgotten to stay within the limits (bootcfg_timeline_evictions_total). */
    private onEvict?: (reason: EvictionReason) => void,
  ) {
    this.limits = { ...DEFAULT_TIMELINE_LIMITS, ...limits };
    this.macByIp = new LruMap(this.limits.machines * ADDRESSES_PER_MACHINE);
    this.machines = new LruMap(this.limits.machines, (_mac, machine) => {
      this.eventCount -= machine.events.length;
      if (machine.ip && this.macByIp.get(machine.ip) === machine.mac) this.macByIp.delete(machine.ip);
      this.onEvict?.(this.evicting);
    });
  }

  /** Records a step; returns the MAC it was filed under, or undefined when it could not be tied to a machine. */
  record(input: BootEventInput): Mac | undefined {
    const mac = input.mac ?? (input.ip ? this.macByIp.get(input.ip) : undefined);
    if (!mac) return undefined;
    const at = this.now();
    let machine = this.machines.touch(mac);
    if (!machine) {
      machine = { mac, uuid: undefined, ip: undefined, firstSeen: at, lastSeen: at, events: [] };
      this.machines.set(mac, machine);
    }
    if (input.uuid) machine.uuid = input.uuid;
    if (input.ip && input.ip !== '0.0.0.0') {
      machine.ip = input.ip;
      this.bindAddress(input.ip, mac);
    }
    machine.lastSeen = at;
    // The input is one member of the union and so is the event: same step, same detail.
    const event = { step: input.step, at, ip: input.ip, detail: input.detail } as BootEvent;
    machine.events.push(event);
    this.eventCount += 1;
    if (machine.events.length > this.limits.eventsPerMachine) {
      // An eighth more than needed goes at once: a machine at its bound (a lab VM rebooting in a
      // loop) would otherwise move all its events down by one on every step (~1 µs of each /ipxe).
      const over = machine.events.length - this.limits.eventsPerMachine + (this.limits.eventsPerMachine >> 3);
      machine.events.splice(0, over);
      this.eventCount -= over;
    }
    if (this.eventCount > this.limits.events) this.trimToEventBudget(machine);
    for (const listener of this.listeners) listener(mac, event);
    return mac;
  }

  /** Tells the timeline which machine holds an address (a lease, a 4011 request from a client's own IP). */
  bindAddress(ip: string, mac: Mac): void {
    // Only a change reorders: the address kept longest without a new owner is evicted first, and
    // the many steps that repeat a binding (every download of a boot) cost one lookup.
    if (ip && ip !== '0.0.0.0' && this.macByIp.get(ip) !== mac) this.macByIp.set(ip, mac);
  }

  /** Forgets the machines seen least recently until the events fit the budget; never the one just recorded. */
  private trimToEventBudget(current: MachineRecord): void {
    this.evicting = 'events';
    try {
      while (this.eventCount > this.limits.events && this.machines.size > 1) this.machines.evictOldest();
    } finally {
      this.evicting = 'machines';
    }
    // One machine alone over the budget (a budget below eventsPerMachine): its oldest steps go.
    if (this.eventCount > this.limits.events) {
      const over = this.eventCount - this.limits.events;
      current.events.splice(0, over);
      this.eventCount -= over;
    }
  }

  /** What is held now, for bootcfg_timeline_entries. */
  size(): TimelineSize {
    return { machines: this.machines.size, events: this.eventCount, addresses: this.macByIp.size };
  }

  macForAddress(ip: string): Mac | undefined {
    return this.macByIp.get(ip);
  }

  get(mac: Mac): MachineRecord | undefined {
    return this.machines.get(mac);
  }

  /** Most recently seen first. */
  list(): MachineRecord[] {
    return [...this.machines.values()].reverse();
  }

  /** Who is told of evictions from now on: the metrics of the services restarted around this timeline (commands/serve.ts). */
  reportEvictionsTo(onEvict: (reason: EvictionReason) => void): void {
    this.onEvict = onEvict;
  }

  onEvent(listener: BootEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
