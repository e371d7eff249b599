import type { AppContext, Service } from '../appliance.ts';
import type { Mac } from '../net/mac.ts';
import { assessBoot, DEFAULT_RULES, type ProgressRules } from './progress.ts';

const MAX_MACHINES = 4096;

export interface StallWatchOptions {
  rules?: ProgressRules;
  /** How often overdue machines are judged; a stall is reported at most this late. */
  checkEveryMs?: number;
  /** The timeline's clock (tests inject one). */
  now?: () => number;
}

/**
 * Says so, once, when a boot stalls: a warning log line with the MAC and what never came,
 * and bootcfg_boots_stalled_total, so journald readers and alerting see what the machines
 * page shows. Only machines whose last step is overdue are judged, oldest first.
 */
export class StallWatch implements Service {
  readonly name = 'stall-watch';
  /** Machines with a step not yet judged, by the time of that step; Map order is step order. */
  private readonly due = new Map<Mac, number>();
  private readonly rules: ProgressRules;
  private readonly checkEveryMs: number;
  private readonly now: () => number;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: AppContext,
    options: StallWatchOptions = {},
  ) {
    this.rules = options.rules ?? DEFAULT_RULES;
    this.checkEveryMs = options.checkEveryMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.ctx.timeline.onEvent((mac, event) => {
      this.due.delete(mac);
      // As bounded as the timeline: past its size, the oldest machine goes unjudged.
      if (this.due.size >= MAX_MACHINES) {
        const oldest = this.due.keys().next().value;
        if (oldest !== undefined) this.due.delete(oldest);
      }
      this.due.set(mac, event.at);
    });
    this.timer = setInterval(() => this.check(), this.checkEveryMs);
    this.timer.unref();
  }

  /** Judges every machine whose last step is older than the stall limit; returns the MACs that stalled. */
  check(): Mac[] {
    const now = this.now();
    const stalled: Mac[] = [];
    for (const [mac, at] of this.due) {
      if (now - at <= this.rules.stallAfterMs) break; // the rest are newer
      this.due.delete(mac);
      const machine = this.ctx.timeline.get(mac);
      if (!machine) continue;
      const p = assessBoot(machine.events, now, this.rules);
      if (p.state !== 'stalled') continue;
      stalled.push(mac);
      this.ctx.metrics.bootsStalled.inc();
      this.ctx.log.warn({ mac, uuid: machine.uuid, ip: machine.ip, step: 'boot.stalled', lastStep: p.lastStep, expected: p.expected, missingFiles: p.missingFiles.length ? p.missingFiles : undefined }, `boot stalled: ${p.reason}`);
    }
    return stalled;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.due.clear();
  }
}

export function createStallWatch(ctx: AppContext): Service {
  return new StallWatch(ctx);
}
