import Router from '@koa/router';
import type { Registry } from 'prom-client';
import { named } from './request-info.ts';

/** GET /metrics: every counter of the appliance (and the process's own) in Prometheus text format. */
export function metricsRouter(registry: Registry): Router {
  const router = new Router();
  router.get(
    '/metrics',
    named(
      'metrics',
      async (c) => {
        c.type = registry.contentType;
        c.set('Cache-Control', 'no-store');
        c.body = await registry.metrics();
      },
      { quiet: true },
    ),
  );
  return router;
}
