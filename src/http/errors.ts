/**
 * Errors, one way: handlers end a request that cannot be served with `fail()` (a Koa HttpError
 * carrying the body to send), and answerError turns it into the response. Anything else
 * thrown is a bug: 500, a generic body, and the error on the app's 'error' event.
 */
import type Koa from 'koa';
import { requestInfo } from './request-info.ts';

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

/**
 * Turns what a handler threw into the response, once, for every route (request-log.ts calls
 * it around the whole app). Returns false when nothing can be answered any more (a stream
 * failed after its headers went out): the caller rethrows.
 */
export function answerError(c: Koa.Context, err: unknown): boolean {
  if (c.res.headersSent) return false;
  const info = requestInfo(c);
  if (isFailure(err)) {
    c.status = err.status;
    if (typeof err.body === 'string') {
      c.type = 'text/plain';
      c.body = err.body.endsWith('\n') ? err.body : `${err.body}\n`;
    } else c.body = err.body;
    info.reason = err.reason ?? (typeof err.body === 'string' ? err.body.trim() : err.message);
    return true;
  }
  if (isExposed(err)) {
    c.status = err.status;
    c.type = 'text/plain';
    c.body = `${err.message}\n`;
    info.reason = err.message;
    return true;
  }
  c.status = 500;
  c.type = 'text/plain';
  c.body = 'Internal Server Error\n';
  info.reason = err instanceof Error ? err.message : String(err);
  c.app.emit('error', err, c);
  return true;
}
