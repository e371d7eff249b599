import type { AppContext, Service } from '../appliance.ts';

/** Loads the store before anything can ask it, and keeps it in step with the data directory until stop. */
export function createStoreService(ctx: AppContext): Service {
  return {
    name: 'store',
    start: () => ctx.store.open(),
    stop: () => ctx.store.close(),
  };
}
