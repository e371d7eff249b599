import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';

/** One protocol step of one machine's boot. `step` names are stable: the API and UI key on them. */
export type BootStep =
  | 'dhcp.request'
  | 'dhcp.reply'
  | 'dhcp.ignored'
  | 'pxe.request'
  | 'pxe.reply'
  | 'tftp.start'
  | 'tftp.end'
  | 'http.boot-script'
  | 'http.ipxe'
  | 'http.cloud'
  | 'http.pixiecore'
  | 'http.image';

export interface BootEventInput {
  step: BootStep;
  mac?: Mac | undefined;
  uuid?: Uuid | undefined;
  /** The client's IPv4, used to tie TFTP and image downloads (which carry no MAC) to a machine. */
  ip?: string | undefined;
  detail?: Record<string, unknown>;
}

export interface BootEvent {
  step: BootStep;
  at: number;
  ip: string | undefined;
  detail: Record<string, unknown>;
}

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

/**
 * Per-machine boot events in bounded memory: the oldest machine is forgotten first,
 * and each machine keeps only its latest events, so a rack booting in a loop cannot
 * grow the process.
 */
export class BootTimeline {
  private readonly machines = new Map<Mac, MachineRecord>();
  private readonly macByIp = new Map<string, Mac>();
  private readonly listeners = new Set<(mac: Mac, event: BootEvent) => void>();

  constructor(
    private readonly limits: TimelineLimits = { machines: 4096, eventsPerMachine: 200 },
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a step; returns the MAC it was filed under, or undefined when it could not be tied to a machine. */
  record(input: BootEventInput): Mac | undefined {
    const mac = input.mac ?? (input.ip ? this.macByIp.get(input.ip) : undefined);
    if (!mac) return undefined;
    const at = this.now();
    let machine = this.machines.get(mac);
    if (machine) {
      // Re-insert so Map order stays least-recently-seen first for eviction.
      this.machines.delete(mac);
    } else {
      machine = { mac, uuid: undefined, ip: undefined, firstSeen: at, lastSeen: at, events: [] };
      if (this.machines.size >= this.limits.machines) {
        const oldest = this.machines.keys().next().value;
        if (oldest !== undefined) this.forget(oldest);
      }
    }
    this.machines.set(mac, machine);
    if (input.uuid) machine.uuid = input.uuid;
    if (input.ip && input.ip !== '0.0.0.0') {
      machine.ip = input.ip;
      this.macByIp.set(input.ip, mac);
    }
    machine.lastSeen = at;
    const event: BootEvent = { step: input.step, at, ip: input.ip, detail: input.detail ?? {} };
    machine.events.push(event);
    if (machine.events.length > this.limits.eventsPerMachine) machine.events.splice(0, machine.events.length - this.limits.eventsPerMachine);
    for (const listener of this.listeners) listener(mac, event);
    return mac;
  }

  /** Tells the timeline which machine holds an address (a lease, a 4011 request from a client's own IP). */
  bindAddress(ip: string, mac: Mac): void {
    if (ip && ip !== '0.0.0.0') this.macByIp.set(ip, mac);
  }

  macForAddress(ip: string): Mac | undefined {
    return this.macByIp.get(ip);
  }

  get(mac: Mac): MachineRecord | undefined {
    return this.machines.get(mac);
  }

  list(): MachineRecord[] {
    return [...this.machines.values()].reverse();
  }

  onEvent(listener: (mac: Mac, event: BootEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private forget(mac: Mac): void {
    const machine = this.machines.get(mac);
    this.machines.delete(mac);
    if (machine?.ip && this.macByIp.get(machine.ip) === mac) this.macByIp.delete(machine.ip);
  }
}
