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
}

export type BootEventListener = (mac: Mac, event: BootEvent) => void;

/** Addresses kept per machine the timeline holds: full DHCP binds the address of every client, booting or not. */
const ADDRESSES_PER_MACHINE = 4;

/**
 * Per-machine boot events in bounded memory: the machine seen least recently is forgotten
 * first, and each machine keeps only its latest events, so a rack booting in a loop cannot
 * grow the process.
 */
export class BootTimeline {
  private readonly machines: LruMap<Mac, MachineRecord>;
  private readonly macByIp: LruMap<string, Mac>;
  private readonly listeners = new Set<BootEventListener>();

  constructor(
    private readonly limits: TimelineLimits = { machines: 4096, eventsPerMachine: 200 },
    private readonly now: () => number = Date.now,
  ) {
    this.macByIp = new LruMap(limits.machines * ADDRESSES_PER_MACHINE);
    this.machines = new LruMap(limits.machines, (_mac, machine) => {
      if (machine.ip && this.macByIp.get(machine.ip) === machine.mac) this.macByIp.delete(machine.ip);
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
    if (machine.events.length > this.limits.eventsPerMachine) machine.events.splice(0, machine.events.length - this.limits.eventsPerMachine);
    for (const listener of this.listeners) listener(mac, event);
    return mac;
  }

  /** Tells the timeline which machine holds an address (a lease, a 4011 request from a client's own IP). */
  bindAddress(ip: string, mac: Mac): void {
    // Only a change reorders: the address kept longest without a new owner is evicted first, and
    // the many steps that repeat a binding (every download of a boot) cost one lookup.
    if (ip && ip !== '0.0.0.0' && this.macByIp.get(ip) !== mac) this.macByIp.set(ip, mac);
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

  onEvent(listener: BootEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
