import type { AppContext, Service } from '../appliance.ts';
import type { Mac } from '../net/mac.ts';
import { advanceCompletion, newCompletionState, type CompletionState } from './progress.ts';

/** Same bound as the timeline's machines: a rack booting in a loop cannot grow this map. */
const MAX_MACHINES = 4096;

/**
 * Counts bootcfg_boots_completed_total from the timeline, with the same rule the machines
 * page uses (progress.ts): one count per boot script whose kernel and initrds were all fetched.
 */
export class BootCounter implements Service {
  readonly name = 'boot-counter';
  private readonly states = new Map<Mac, CompletionState>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly ctx: AppContext) {}

  async start(): Promise<void> {
    this.unsubscribe = this.ctx.timeline.onEvent((mac, event) => {
      let state = this.states.get(mac);
      if (state) this.states.delete(mac);
      else {
        state = newCompletionState();
        if (this.states.size >= MAX_MACHINES) {
          const oldest = this.states.keys().next().value;
          if (oldest !== undefined) this.states.delete(oldest);
        }
      }
      this.states.set(mac, state);
      if (advanceCompletion(state, event)) {
        this.ctx.metrics.bootsCompleted.inc();
        this.ctx.log.info({ mac, step: 'boot.completed' }, `${mac} fetched its boot script, kernel and every initrd`);
      }
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.states.clear();
  }
}

export function createBootCounter(ctx: AppContext): Service {
  return new BootCounter(ctx);
}
