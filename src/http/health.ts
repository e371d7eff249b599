import Router from '@koa/router';
import { named } from './request-info.ts';

/** Why a part is degraded (still serving, from what it last had), or undefined when it is well. */
export type DegradedCheck = () => string | undefined;

/**
 * Liveness for systemd and load balancers: the process answers HTTP. A degraded part (the etcd
 * store through an outage) still answers 200, since machines keep booting from the last good
 * configs, and says why on the body's first line, so an operator's curl shows it.
 */
export function healthRouter(checks: DegradedCheck[] = []): Router {
  const router = new Router();
  router.get(
    '/healthz',
    named(
      'healthz',
      (c) => {
        c.type = 'text/plain';
        const reasons = checks.map((check) => check()).filter((r): r is string => r !== undefined);
        c.body = reasons.length ? `degraded: ${reasons.join('; ')}\n` : 'ok\n';
      },
      { quiet: true },
    ),
  );
  return router;
}
