import type Koa from 'koa';
import { describeLookup, type LookupResult } from '../store/store.ts';
import { requestInfo } from './request-log.ts';

/** Notes which file answered (or why none did) for the request log. */
export function noteLookup(c: Koa.Context, result: LookupResult<unknown>): void {
  const info = requestInfo(c);
  info.key = result.decidedBy?.key;
  info.file = result.decidedBy?.path;
}

/**
 * Answers a lookup that found nothing usable: 404 with what was looked up, or 500 when
 * the file meant for this machine is broken and never parsed (falling through to a less
 * specific config could boot the machine into the wrong system).
 */
export function answerNoConfig(c: Koa.Context, result: LookupResult<unknown>, dataPath: string): void {
  const text = describeLookup(result, dataPath);
  c.status = result.decidedBy?.outcome === 'broken' ? 500 : 404;
  c.type = 'text/plain';
  c.body = `${result.decidedBy?.outcome === 'broken' ? 'broken' : 'no'} ${text}\n`;
  requestInfo(c).reason = text;
}

export function answerBadRequest(c: Koa.Context, reason: string): void {
  c.status = 400;
  c.type = 'text/plain';
  c.body = `bad request: ${reason}\n`;
  requestInfo(c).reason = reason;
}
