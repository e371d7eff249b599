import Router from '@koa/router';
import { named } from './request-info.ts';

/** Liveness for systemd and load balancers: the process answers HTTP. */
export function healthRouter(): Router {
  const router = new Router();
  router.get(
    '/healthz',
    named(
      'healthz',
      (c) => {
        c.type = 'text/plain';
        c.body = 'ok\n';
      },
      { quiet: true },
    ),
  );
  return router;
}
