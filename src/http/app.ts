import type { RequestListener } from 'node:http';
import type Router from '@koa/router';
import Koa from 'koa';
import type { BootTimeline } from '../events/timeline.ts';
import type { FirmwareCatalog } from '../firmware/catalog.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';
import { createApiRouter, type ApiDeps, type ApiOptions } from './api.ts';
import { cloudRouter } from './cloud.ts';
import { firmwareRouter } from './firmware.ts';
import type { BodyWriter } from './file-body.ts';
import { grubRoutes } from './grub.ts';
import { healthRouter, type DegradedCheck } from './health.ts';
import { imagesRouter } from './images.ts';
import { ipxeRoutes } from './ipxe.ts';
import { leanPath } from './lean-path.ts';
import { matchboxRouter, type MatchboxRoutesDeps } from './matchbox.ts';
import { metricsRouter } from './metrics.ts';
import { pixiecoreRouter } from './pixiecore.ts';
import { requestLog, requestLogger } from './request-log.ts';
import { uiRouter } from './ui.ts';

/** Everything the HTTP API serves from; each router takes its part. */
export interface HttpAppDeps {
  log: Logger;
  metrics: Metrics;
  timeline: BootTimeline;
  store: Pick<Store, 'boot' | 'cloud' | 'dataPath'>;
  firmware: Pick<FirmwareCatalog, 'resolve' | 'explain' | 'isListed'>;
  imagesPath: string;
  /** --http-sendfile: how image bodies are written (file-body.ts). */
  imageBodies?: BodyWriter;
  /** Where boot scripts point machines (--base-url). */
  baseUrl: string;
  explain: ApiDeps['explain'];
  /** The fleet view for /api/machines and the page when the store is shared (fleet-view.ts). */
  machines?: ApiDeps['machines'];
  api?: ApiOptions;
  /** The matchbox layout of --data-path (groups, profiles, templates); without it /ignition, /generic and /metadata are not served. */
  matchbox?: MatchboxRoutesDeps['matchbox'] | undefined;
  /** What /healthz reports as degraded (the etcd store through an outage). */
  degraded?: DegradedCheck[] | undefined;
}

/** A router's routes plus its 405/501 answers, as one middleware for `app.use`. */
export function routes(router: Router): Koa.Middleware {
  const matched = router.routes() as Koa.Middleware;
  const allowed = router.allowedMethods() as Koa.Middleware;
  return (c, next) => matched(c, () => allowed(c, next));
}

/**
 * Composes the HTTP API. Handlers stay thin: they validate the request, ask the store,
 * hand the answer to a renderer (render/) and record the step; failures end in `fail()`,
 * which the request log (outermost) answers through errors.ts answerError, the one error
 * handler. So every route gets one answer for a failure, one log line and one metrics count.
 * The boot routes (/boot.ipxe, /ipxe, /grub) are not here: createHttpHandler answers them
 * ahead of Koa.
 */
export function createHttpApp(deps: HttpAppDeps): Koa {
  const app = new Koa();
  app.use(requestLog(deps));
  app.use(routes(cloudRouter(deps)));
  app.use(routes(pixiecoreRouter(deps)));
  if (deps.matchbox) app.use(routes(matchboxRouter({ matchbox: deps.matchbox, baseUrl: deps.baseUrl })));
  app.use(routes(imagesRouter(deps)));
  app.use(routes(firmwareRouter(deps)));
  app.use(routes(healthRouter(deps.degraded)));
  app.use(routes(createApiRouter(deps, deps.api)));
  app.use(routes(metricsRouter(deps.metrics.scraped)));
  app.use(routes(uiRouter()));
  app.on('error', (err: Error) => deps.log.warn({ err }, 'http error'));
  return app;
}

/**
 * The server's request listener: the boot scripts every booting machine asks for on the lean
 * path (lean-path.ts; the same log line, count, timeline steps and error answers), the rest
 * through Koa (createHttpApp).
 */
export function createHttpHandler(deps: HttpAppDeps): RequestListener {
  const app = createHttpApp(deps);
  return leanPath({ ...ipxeRoutes(deps), ...grubRoutes(deps) }, app.callback(), {
    logged: requestLogger(deps),
    onBug: (err) => deps.log.warn({ err }, 'http error'),
  });
}
