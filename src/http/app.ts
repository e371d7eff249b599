import Koa from 'koa';
import Router from '@koa/router';
import type { AppContext } from '../appliance.ts';

/** Composes the HTTP API. Handlers stay thin: lookups live in the store, rendering in its own modules. */
export function createHttpApp(ctx: AppContext): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/healthz', (c) => {
    c.body = 'ok\n';
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.on('error', (err: Error) => ctx.log.warn({ err }, 'http error'));
  return app;
}
