import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Mac } from '../net/mac.ts';
import type { Service } from '../service.ts';
import { LruMap } from '../util/lru-map.ts';
import { assessBoot, DEFAULT_RULES, type ProgressRules } from './progress.ts';
import { DEFAULT_TIMELINE_LIMITS, type BootTimeline } from './timeline.ts';

/** Same bound as the timeline's machines. */
const MAX_MACHINES = DEFAULT_TIMELINE_LIMITS.machines;

export interface StallWatchDeps {
  timeline: Pick<BootTimeline, 'onEvent' | 'get'>;
  metrics: Pick<Metrics, 'bootsStalled'>;
  log: Logger;
}

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
  /** Machines with a step not yet judged, by the time of that step; oldest step first. As bounded as the timeline. */
  private readonly due = new LruMap<Mac, number>(MAX_MACHINES);
  private readonly rules: ProgressRules;
  private readonly checkEveryMs: number;
  private readonly now: () => number;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: StallWatchDeps,
    options: StallWatchOptions = {},
  ) {
    this.rules = options.rules ?? DEFAULT_RULES;
    this.checkEveryMs = options.checkEveryMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.deps.timeline.onEvent((mac, event) => {
      this.due.set(mac, event.at);
    });
    this.timer = setInterval(() => this.check(), this.checkEveryMs);
    this.timer.unref();
  }

  /** Judges every machine whose last step is older than the stall limit; returns the MACs that stalled. */
  check(): Mac[] {
    const now = this.now();
    const stalled: Mac[] = [];
    for (const [mac, at] of this.due.entries()) {
      if (now - at <= this.rules.stallAfterMs) break; // the rest are newer
      this.due.delete(mac);
      const machine = this.deps.timeline.get(mac);
      if (!machine) continue;
      const p = assessBoot(machine.events, now, this.rules);
      if (p.state !== 'stalled') continue;
      stalled.push(mac);
      this.deps.metrics.bootsStalled.inc();
      this.deps.log.warn(
        { mac, uuid: machine.uuid, ip: machine.ip, step: 'boot.stalled', lastStep: p.lastStep, expected: p.expected, missingFiles: p.missingFiles.length ? p.missingFiles : undefined },
        `boot stalled: ${p.reason}`,
      );
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
