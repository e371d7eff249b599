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

/** fail() for code that answers without a Koa context (lean-path.ts): the same error, answered the same way. */
export function failure(status: number, body: string, reason?: string): never {
  const props: FailureProps & { status: number; expose: true } = { status, body, reason, expose: true };
  throw Object.assign(new Error(body), props);
}

function isFailure(err: unknown): err is Error & FailureProps & { status: number } {
  return err instanceof Error && typeof (err as { status?: unknown }).status === 'number' && 'body' in err;
}

/** An HTTP error thrown by Koa or a library (c.throw, http-errors) that means to tell the client. */
function isExposed(err: unknown): err is Error & { status: number } {
  const e = err as { status?: unknown; expose?: unknown };
  return err instanceof Error && typeof e.status === 'number' && e.status >= 400 && e.status < 600 && e.expose === true;
}

/** What a thrown error is answered with; `bug` when it was none of ours to tell the client (a 500). */
export interface ErrorAnswer {
  status: number;
  body: FailureProps['body'];
  /** For the request's log line. */
  reason: string;
  bug: boolean;
}

/** The one judgement of a thrown error, for Koa's routes (answerError) and the lean path alike. */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (isFailure(err)) {
    const body = typeof err.body === 'string' ? (err.body.endsWith('\n') ? err.body : `${err.body}\n`) : err.body;
    return { status: err.status, body, reason: err.reason ?? (typeof err.body === 'string' ? err.body.trim() : err.message), bug: false };
  }
  if (isExposed(err)) return { status: err.status, body: `${err.message}\n`, reason: err.message, bug: false };
  return { status: 500, body: 'Internal Server Error\n', reason: err instanceof Error ? err.message : String(err), bug: true };
}

/**
 * Turns what a handler threw into the response, once, for every route (request-log.ts calls
 * it around the whole app). Returns false when nothing can be answered any more (a stream
 * failed after its headers went out): the caller rethrows.
 */
export function answerError(c: Koa.Context, err: unknown): boolean {
  if (c.res.headersSent) return false;
  const answer = errorAnswer(err);
  c.status = answer.status;
  if (typeof answer.body === 'string') c.type = 'text/plain';
  c.body = answer.body;
  requestInfo(c).reason = answer.reason;
  if (answer.bug) c.app.emit('error', err, c);
  return true;
}
