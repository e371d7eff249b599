import type Koa from 'koa';
import type { BootTimeline } from '../events/timeline.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';

/** What a handler tells the request log and metrics about the request it answered. */
export interface RequestInfo {
  /** Stable route label for metrics (`ipxe`, `images`, …), set by `named`; `unmatched` when no route took the request. */
  route?: string;
  mac?: Mac | undefined;
  uuid?: Uuid | undefined;
  /** The data file that answered. */
  file?: string | undefined;
  /** The store key that answered (`uuid/…`, `mac/…`, `default`). */
  key?: string | undefined;
  /** Why the request failed, for the log line. */
  reason?: string | undefined;
  /** Health checks and scrapes log at debug so they do not drown the boot log. */
  quiet?: boolean;
}

export function requestInfo(c: Koa.Context): RequestInfo {
  const state = c.state as { request?: RequestInfo };
  state.request ??= {};
  return state.request;
}

/** The client's IPv4 as the timeline keys it (a dual-stack listener reports `::ffff:a.b.c.d`). */
export function clientIp(c: Koa.Context): string {
  const ip = c.request.ip ?? '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

function statusOf(c: Koa.Context, err: unknown): number {
  if (err) {
    const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
    return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
  }
  return c.status;
}

/** A route handler that labels its requests for the log and metrics; `quiet` ones (health checks, scrapes, the page) log at debug. */
export function named(route: string, handler: Koa.Middleware, opts: { quiet?: boolean } = {}): Koa.Middleware {
  return (c, next) => {
    const info = requestInfo(c);
    info.route = route;
    if (opts.quiet) info.quiet = true;
    return handler(c, next);
  };
}

export interface RequestLogDeps {
  log: Logger;
  metrics: Pick<Metrics, 'httpRequests'>;
  timeline: Pick<BootTimeline, 'macForAddress'>;
}

/** One log line and one metrics count per request, with the machine and the file that answered. */
export function requestLog(app: RequestLogDeps): Koa.Middleware {
  return async (c, next) => {
    const started = performance.now();
    let error: unknown;
    try {
      await next();
    } catch (err) {
      error = err;
      throw err;
    } finally {
      const info = requestInfo(c);
      const status = statusOf(c, error);
      const route = info.route ?? 'unmatched';
      app.metrics.httpRequests.inc({ route, status: String(status) });
      const fields = {
        method: c.method,
        path: c.path,
        status,
        ip: clientIp(c),
        // Image downloads carry no MAC; the machine that fetched /ipxe from this address did.
        mac: info.mac ?? app.timeline.macForAddress(clientIp(c)),
        uuid: info.uuid,
        key: info.key,
        file: info.file,
        reason: info.reason,
        range: c.get('range') || undefined,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      const msg = `${c.method} ${c.url} ${status}`;
      if (info.quiet) app.log.debug(fields, msg);
      else app.log.info(fields, msg);
    }
  };
}
