/**
 * The one error middleware: handlers end a request that cannot be served with `fail()` (a
 * Koa HttpError carrying the body to send), and this turns it into the response. Anything
 * else thrown is a bug: 500, a generic body, and the error on the app's 'error' event.
 */
import type Koa from 'koa';
import { requestInfo } from './request-log.ts';

interface FailureProps {
  /** Text (sent as text/plain) or an object (sent as JSON). */
  body: string | Record<string, unknown>;
  /** For the request's log line; defaults to the text body. */
  reason?: string | undefined;
}

/** Ends the request with `status` and `body`; never returns. */
export function fail(c: Koa.Context, status: number, body: FailureProps['body'], reason?: string): never {
  const props: FailureProps & { expose: true } = { body, reason, expose: true };
  c.throw(status, typeof body === 'string' ? body : String(body.error ?? status), props);
}

function isFailure(err: unknown): err is Error & FailureProps & { status: number } {
  return err instanceof Error && typeof (err as { status?: unknown }).status === 'number' && 'body' in err;
}

/** An HTTP error thrown by Koa or a library (c.throw, http-errors) that means to tell the client. */
function isExposed(err: unknown): err is Error & { status: number } {
  const e = err as { status?: unknown; expose?: unknown };
  return err instanceof Error && typeof e.status === 'number' && e.status >= 400 && e.status < 600 && e.expose === true;
}

export function errorMiddleware(): Koa.Middleware {
  return async (c, next) => {
    try {
      await next();
    } catch (err) {
      if (c.res.headersSent) throw err; // a stream failed mid-way: nothing left to answer with
      const info = requestInfo(c);
      if (isFailure(err)) {
        c.status = err.status;
        if (typeof err.body === 'string') {
          c.type = 'text/plain';
          c.body = err.body.endsWith('\n') ? err.body : `${err.body}\n`;
        } else c.body = err.body;
        info.reason = err.reason ?? (typeof err.body === 'string' ? err.body.trim() : err.message);
        return;
      }
      if (isExposed(err)) {
        c.status = err.status;
        c.type = 'text/plain';
        c.body = `${err.message}\n`;
        info.reason = err.message;
        return;
      }
      c.status = 500;
      c.type = 'text/plain';
      c.body = 'Internal Server Error\n';
      info.reason = err instanceof Error ? err.message : String(err);
      c.app.emit('error', err, c);
    }
  };
}
