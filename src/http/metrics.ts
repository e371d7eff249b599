import Router from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { requestInfo } from './request-log.ts';

/** GET /metrics: every counter of the appliance (and the process's own) in Prometheus text format. */
export function createMetricsRouter(ctx: AppContext): Router {
  const router = new Router();
  router.get('/metrics', async (c) => {
    const info = requestInfo(c);
    info.route = 'metrics';
    info.quiet = true;
    c.type = ctx.metrics.registry.contentType;
    c.set('Cache-Control', 'no-store');
    c.body = await ctx.metrics.registry.metrics();
  });
  return router;
}
