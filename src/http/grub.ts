import Router from '@koa/router';
import type { BootTimeline } from '../events/timeline.ts';
import { renderGrubConfig } from '../render/grub-config.ts';
import type { Store } from '../store/store.ts';
import { labelsFromQuery } from '../store/matchbox.ts';
import { fail } from './errors.ts';
import { lookupMiss, noteLookup } from './lookup-response.ts';
import { machineQuery } from './machine-query.ts';
import { clientIp, named, requestInfo } from './request-info.ts';

export interface GrubRoutesDeps {
  store: Pick<Store, 'boot' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
  baseUrl: string;
}

/**
 * /grub?mac=&uuid=: the GRUB config of one machine, as matchbox serves it, for GRUB builds
 * with the http module (`configfile (http,host:port)/grub?mac=${net_default_mac}`). The same
 * boot config and renderer as the TFTP hand-over; kernels and initrds are named as HTTP URLs.
 */
export function grubRouter({ store, timeline, baseUrl }: GrubRoutesDeps): Router {
  const router = new Router();
  router.get(
    '/grub',
    named('grub', (c) => {
      const { machine } = machineQuery(c);
      const info = requestInfo(c);
      info.mac = machine.mac;
      info.uuid = machine.uuid;
      const ip = clientIp(c);
      if (machine.mac) timeline.bindAddress(ip, machine.mac);
      // Every query parameter is a label for matchbox groups' selectors (boot-lookup.ts).
      const result = store.boot({ ...machine, labels: labelsFromQuery(c.query).labels, rawQuery: c.querystring });
      noteLookup(c, result);
      const key = result.decidedBy?.key;
      const file = result.decidedBy?.path;
      if (!result.value) {
        const miss = lookupMiss(result, store.dataPath);
        timeline.record({ step: 'grub.config', mac: machine.mac, uuid: machine.uuid, ip, detail: { via: 'http', status: miss.status, path: c.path, found: false, key, file, reason: miss.reason } });
        fail(c, miss.status, miss.body, miss.reason);
      }
      const rendered = renderGrubConfig(result.value!, { baseUrl, transport: 'http', machine, key: key ?? 'default' });
      const reason = rendered.problems.length ? rendered.problems.join('; ') : undefined;
      timeline.record({
        step: 'grub.config',
        mac: machine.mac,
        uuid: machine.uuid,
        ip,
        detail: { via: 'http', status: 200, found: true, key, file, kernel: rendered.kernel, initrds: rendered.initrds, reason },
      });
      c.type = 'text/plain';
      c.body = rendered.text;
    }),
  );
  return router;
}
