import Router from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { requestInfo } from './request-log.ts';

/** Liveness for systemd and load balancers: the process answers HTTP. */
export function healthRouter(_app: AppContext): Router {
  const router = new Router();
  router.get('/healthz', (c) => {
    const info = requestInfo(c);
    info.route = 'healthz';
    info.quiet = true;
    c.type = 'text/plain';
    c.body = 'ok\n';
  });
  return router;
}
