import type Koa from 'koa';
import type { BootTimeline } from '../events/timeline.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { answerError } from './errors.ts';
import { clientIp, requestInfo } from './request-info.ts';

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

/**
 * The outermost middleware: what the app threw becomes its answer (errors.ts answerError, the
 * one error handler), then one log line and one metrics count per request, with the machine
 * and the file that answered. One async frame for both, as every request passes through them.
 */
export function requestLog(app: RequestLogDeps): Koa.Middleware {
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
      const info = requestInfo(c);
      const status = statusOf(c, error);
      const route = info.route ?? 'unmatched';
      app.metrics.httpRequests.inc({ route, status: String(status) });
      const ip = clientIp(c);
      const fields = {
        method: c.method,
        path: c.path,
        status,
        ip,
        // Image downloads carry no MAC; the machine that fetched /ipxe from this address did.
        mac: info.mac ?? app.timeline.macForAddress(ip),
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
