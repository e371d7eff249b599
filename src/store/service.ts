import type { Service } from '../service.ts';
import type { Store } from './store.ts';

/** Loads the store before anything can ask it, and keeps it in step with its source until stop. */
export function storeService(store: Pick<Store, 'open' | 'close'>): Service {
  return {
    name: 'store',
    start: () => store.open(),
    stop: () => store.close(),
  };
}
