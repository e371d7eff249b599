import Router from '@koa/router';
import type { BootTimeline } from '../events/timeline.ts';
import type { Store } from '../store/store.ts';
import { fail } from './errors.ts';
import { lookupDetail, lookupMiss, noteLookup } from './lookup-response.ts';
import { lookupQuery, machineQuery } from './machine-query.ts';
import { clientIp, named, requestInfo } from './request-info.ts';

export interface CloudRoutesDeps {
  store: Pick<Store, 'cloud' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record'>;
}

/** /cloud?uuid=&mac=: the cloud config text, fetched by the booted OS (so the client IP is the machine's). */
export function cloudRouter({ store, timeline }: CloudRoutesDeps): Router {
  const router = new Router();
  router.get(
    '/cloud',
    named('cloud', (c) => {
      const { machine } = machineQuery(c);
      const info = requestInfo(c);
      info.mac = machine.mac;
      info.uuid = machine.uuid;
      const result = store.cloud(lookupQuery(machine, c.query, c.querystring));
      noteLookup(requestInfo(c), result);
      const miss = result.value ? undefined : lookupMiss(result, store.dataPath);
      timeline.record({
        step: 'http.cloud',
        mac: machine.mac,
        uuid: machine.uuid,
        ip: clientIp(c),
        detail: lookupDetail(c.path, result, miss),
      });
      if (miss) fail(c, miss.status, miss.body, miss.reason);
      c.type = 'text/plain';
      c.body = result.value!.text;
    }),
  );
  return router;
}
