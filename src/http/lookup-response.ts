import type { HttpLookupDetail } from '../events/boot-event.ts';
import { describeLookup, type LookupResult } from '../store/store.ts';
import type { RequestInfo } from './request-info.ts';

/** Notes which file answered (or why none did) for the request log. */
export function noteLookup(info: RequestInfo, result: LookupResult<unknown>): void {
  info.key = result.decidedBy?.key;
  info.file = result.decidedBy?.path;
}

export interface LookupMiss {
  status: 404 | 500;
  body: string;
  /** The one-line description of every lookup step, for the log and the timeline. */
  reason: string;
}

/**
 * A lookup that found nothing usable: 404 with what was looked up, or 500 when the file
 * meant for this machine is broken and never parsed (falling through to a less specific
 * config could boot the machine into the wrong system).
 */
export function lookupMiss(result: LookupResult<unknown>, dataPath: string): LookupMiss {
  const reason = describeLookup(result, dataPath);
  const broken = result.decidedBy?.outcome === 'broken';
  return { status: broken ? 500 : 404, body: `${broken ? 'broken' : 'no'} ${reason}\n`, reason };
}

/** The timeline detail every lookup step shares: status, whether a config answered and which; the path and reason when none did. */
export function lookupDetail(path: string, result: LookupResult<unknown>, miss: LookupMiss | undefined): HttpLookupDetail {
  return { status: miss?.status ?? 200, found: result.value !== undefined, key: result.decidedBy?.key, file: result.decidedBy?.path, path: miss && path, reason: miss?.reason };
}
