import type { Logger } from '../log.ts';
import { describeLink, linkIsUp, readLink, type LinkState } from './interface.ts';

export interface LinkWatchOptions {
  iface: string;
  log: Logger;
  /** How often the link is looked at. */
  intervalMs?: number;
  /**
   * The interface's IPv4 changed (or came back): everything that advertises it (siaddr, option 54,
   * the URLs in boot scripts) is stale. The caller restarts the services with the new address.
   */
  onAddressChange?: (from: string | undefined, to: string) => void;
  /** Injected in tests. */
  read?: (iface: string) => LinkState | undefined;
}

/**
 * Says what happens to --iface while the appliance runs: the link going down and up (a bridge
 * whose last port left, a cable pulled, docker0 between containers) and its address changing.
 * The sockets stay bound to the interface through all of it, so a flap needs no action; an
 * address change does, and is handed to onAddressChange.
 */
export class LinkWatch {
  private timer: NodeJS.Timeout | undefined;
  private last: LinkState | undefined;
  private readonly read: (iface: string) => LinkState | undefined;

  constructor(private readonly options: LinkWatchOptions) {
    this.read = options.read ?? readLink;
  }

  /** Logs the state at start (so a down link is said, not silently waited on) and starts looking. */
  start(): LinkState | undefined {
    const { iface, log } = this.options;
    this.last = this.read(iface);
    if (this.last && !linkIsUp(this.last)) {
      log.warn(
        { iface, link: describeLink(this.last), address: this.last.address },
        `interface ${iface} is ${describeLink(this.last)}: serving on it anyway; machines are answered as soon as its link comes up`,
      );
    } else if (this.last) log.info({ iface, link: 'up', address: this.last.address }, `interface ${iface} is up`);
    this.timer = setInterval(() => this.check(), this.options.intervalMs ?? 1000);
    this.timer.unref();
    return this.last;
  }

  /** One look; exported for tests. */
  check(): void {
    const { iface, log, onAddressChange } = this.options;
    const before = this.last;
    const now = this.read(iface);
    this.last = now;
    if (!now) {
      if (before) log.error({ iface }, `interface ${iface} is gone: nothing is served until it is back`);
      return;
    }
    if (!before) log.warn({ iface, link: describeLink(now), address: now.address }, `interface ${iface} is back (link ${describeLink(now)})`);
    else if (linkIsUp(before) !== linkIsUp(now)) {
      if (linkIsUp(now)) log.info({ iface, link: 'up', address: now.address }, `interface ${iface}: link up: answering machines on it`);
      else log.warn({ iface, link: describeLink(now), address: now.address }, `interface ${iface}: link ${describeLink(now)}: no machine can reach us until it comes back (still listening)`);
    }
    if (before?.address !== now.address) {
      if (!now.address) log.error({ iface, was: before?.address }, `interface ${iface} lost its IPv4 address ${before?.address}: replies still name it until an address is back`);
      else if (before) {
        log.warn({ iface, from: before.address, to: now.address }, `interface ${iface}: address changed from ${before.address ?? 'none'} to ${now.address}`);
        onAddressChange?.(before.address, now.address);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
