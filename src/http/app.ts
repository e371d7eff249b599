import Koa from 'koa';
import type Router from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { requestLog } from './request-log.ts';
import { ipxeRouter } from './ipxe.ts';
import { cloudRouter } from './cloud.ts';
import { pixiecoreRouter } from './pixiecore.ts';
import { imagesRouter } from './images.ts';
import { firmwareRouter } from './firmware.ts';
import { healthRouter } from './health.ts';
import { createApiRouter } from './api.ts';
import { createMetricsRouter } from './metrics.ts';
import { createUiRouter } from './ui.ts';

/** A router's routes plus its 405/501 answers, as one middleware for `app.use`. */
export function routes(router: Router): Koa.Middleware {
  const matched = router.routes() as Koa.Middleware;
  const allowed = router.allowedMethods() as Koa.Middleware;
  return (c, next) => matched(c, () => allowed(c, next));
}

/**
 * Composes the HTTP API. Handlers stay thin: lookups live in the store, rendering in
 * store/boot-config.ts. The request log comes first so every route, including ones
 * added below, gets one log line and one metrics count.
 */
export function createHttpApp(ctx: AppContext): Koa {
  const app = new Koa();
  app.use(requestLog(ctx));
  app.use(routes(ipxeRouter(ctx)));
  app.use(routes(cloudRouter(ctx)));
  app.use(routes(pixiecoreRouter(ctx)));
  app.use(routes(imagesRouter(ctx)));
  app.use(routes(firmwareRouter(ctx)));
  app.use(routes(healthRouter(ctx)));
  app.use(routes(createApiRouter(ctx)));
  app.use(routes(createMetricsRouter(ctx)));
  app.use(routes(createUiRouter()));
  app.on('error', (err: Error) => ctx.log.warn({ err }, 'http error'));
  return app;
}
