import Router from '@koa/router';
import type { BootTimeline } from '../events/timeline.ts';
import { parseMacInput } from '../net/mac.ts';
import { renderPixiecore } from '../render/pixiecore.ts';
import type { Store } from '../store/store.ts';
import { fail } from './errors.ts';
import { lookupDetail, lookupMiss, noteLookup } from './lookup-response.ts';
import { clientIp, named, requestInfo } from './request-info.ts';

export interface PixiecoreRoutesDeps {
  store: Pick<Store, 'boot' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record'>;
  baseUrl: string;
}

/**
 * Pixiecore's API mode (`pixiecore api <url>/pixiecore`): it asks for each MAC it sees
 * booting and treats any non-200 as "ignore this machine". The caller is the Pixiecore
 * server, not the machine, so its address is not bound to the MAC.
 */
export function pixiecoreRouter({ store, timeline, baseUrl }: PixiecoreRoutesDeps): Router {
  const router = new Router();
  router.get(
    '/pixiecore/v1/boot/:mac',
    named('pixiecore', (c) => {
      const parsed = parseMacInput(c.params.mac ?? '', 'mac');
      if (!parsed.ok) fail(c, 400, `bad request: ${parsed.reason}`, parsed.reason);
      const { mac } = parsed;
      requestInfo(c).mac = mac;
      const result = store.boot({ mac });
      noteLookup(requestInfo(c), result);
      const body = result.value ? renderPixiecore(result.value, baseUrl) : undefined;
      const miss = body ? undefined : lookupMiss(result, store.dataPath);
      timeline.record({
        step: 'http.pixiecore',
        mac,
        detail: Object.assign(lookupDetail(c.path, result, miss), { from: clientIp(c), kernel: body?.kernel, initrds: body?.initrd }),
      });
      if (miss) fail(c, miss.status, miss.body, miss.reason);
      c.body = body;
    }),
  );
  return router;
}
