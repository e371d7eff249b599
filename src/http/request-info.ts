/** What a handler tells the request log about the request it answered, kept on the Koa context. */
import type Koa from 'koa';
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
  return plainIp(c.request.ip ?? '');
}

/** clientIp for a socket's remote address (the lean path has no Koa context). */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
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
