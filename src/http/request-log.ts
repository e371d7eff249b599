import type Koa from 'koa';
import type { BootTimeline } from '../events/timeline.ts';
import { type Logger, logFlat } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { answerError } from './errors.ts';
import { clientIp, type RequestInfo, requestInfo } from './request-info.ts';

function statusOf(c: Koa.Context, err: unknown): number {
  if (err) {
    const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
    return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
  }
  return c.status;
}

export interface RequestLogDeps {
  log: Logger;
  metrics: Pick<Metrics, 'httpRequests'>;
  timeline: Pick<BootTimeline, 'macForAddress'>;
}

/** One answered request, as Koa's middleware and the lean path (lean-path.ts) both see it. */
export interface AnsweredRequest {
  method: string;
  /** The raw path (Koa's c.path). */
  path: string;
  /** The path with its query (Koa's c.url), for the message. */
  url: string;
  status: number;
  ip: string;
  range: string | undefined;
  info: RequestInfo;
  /** performance.now() when the request came in. */
  started: number;
}

/** One log line and one metrics count per request, with the machine and the file that answered. */
export function requestLogger(app: RequestLogDeps): (request: AnsweredRequest) => void {
  return ({ method, path, url, status, ip, range, info, started }) => {
    app.metrics.httpRequests.inc({ route: info.route ?? 'unmatched', status: String(status) });
    const fields = {
      method,
      path,
      status,
      ip,
      // Image downloads carry no MAC; the machine that fetched /ipxe from this address did.
      mac: info.mac ?? app.timeline.macForAddress(ip),
      uuid: info.uuid,
      key: info.key,
      file: info.file,
      reason: info.reason,
      range,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    const msg = `${method} ${url} ${status}`;
    logFlat(app.log, info.quiet ? 'debug' : 'info', fields, msg);
  };
}

/**
 * The outermost middleware: what the app threw becomes its answer (errors.ts answerError, the
 * one error handler), then the request's log line and count (requestLogger). One async frame
 * for both, as every request passes through them.
 */
export function requestLog(app: RequestLogDeps): Koa.Middleware {
  const logged = requestLogger(app);
  return async (c, next) => {
    const started = performance.now();
    let error: unknown;
    try {
      await next();
    } catch (err) {
      if (!answerError(c, err)) {
        error = err;
        throw err;
      }
    } finally {
      logged({ method: c.method, path: c.path, url: c.url, status: statusOf(c, error), ip: clientIp(c), range: c.get('range') || undefined, info: requestInfo(c), started });
    }
  };
}
