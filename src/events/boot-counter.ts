import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Mac } from '../net/mac.ts';
import type { Service } from '../service.ts';
import { LruMap } from '../util/lru-map.ts';
import { advanceCompletion, newCompletionState, type CompletionState } from './progress.ts';
import { DEFAULT_TIMELINE_LIMITS, type BootTimeline } from './timeline.ts';

/** Same bound as the timeline's machines: a rack booting in a loop cannot grow this map. */
const MAX_MACHINES = DEFAULT_TIMELINE_LIMITS.machines;

export interface BootCounterDeps {
  timeline: Pick<BootTimeline, 'onEvent'>;
  metrics: Pick<Metrics, 'bootsCompleted'>;
  log: Logger;
}

/**
 * Counts bootcfg_boots_completed_total from the timeline, with the same rule the machines
 * page uses (progress.ts): one count per boot script whose kernel and initrds were all fetched.
 */
export class BootCounter implements Service {
  readonly name = 'boot-counter';
  private readonly states = new LruMap<Mac, CompletionState>(MAX_MACHINES);
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: BootCounterDeps) {}

  async start(): Promise<void> {
    this.unsubscribe = this.deps.timeline.onEvent((mac, event) => {
      let state = this.states.touch(mac);
      if (!state) {
        state = newCompletionState();
        this.states.set(mac, state);
      }
      if (advanceCompletion(state, event)) {
        this.deps.metrics.bootsCompleted.inc();
        this.deps.log.info({ mac, step: 'boot.completed' }, `${mac} fetched its boot script, kernel and every initrd`);
      }
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.states.clear();
  }
}
