import Router from '@koa/router';
import type Koa from 'koa';
import type { BootTimeline } from '../events/timeline.ts';
import { BOOT_SCRIPT, renderBoot } from '../render/ipxe-script.ts';
import type { Store } from '../store/store.ts';
import { labelsFromQuery } from '../store/matchbox.ts';
import { fail } from './errors.ts';
import { lookupDetail, lookupMiss, noteLookup } from './lookup-response.ts';
import { machineQuery } from './machine-query.ts';
import { clientIp, named, requestInfo } from './request-info.ts';

export interface IpxeRoutesDeps {
  store: Pick<Store, 'boot' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
  /** Where the script's kernel and initrd URLs point. */
  baseUrl: string;
}

/** /boot.ipxe (and the `.0` dnsmasq's pxe-service asks for) and /ipxe, the per-machine boot script. */
export function ipxeRouter({ store, timeline, baseUrl }: IpxeRoutesDeps): Router {
  const router = new Router();

  const bootScript = named('boot.ipxe', (c) => {
    timeline.record({ step: 'http.boot-script', ip: clientIp(c), detail: { status: 200 } });
    c.type = 'text/plain';
    c.body = BOOT_SCRIPT;
  });
  router.get('/boot.ipxe', bootScript);
  router.get('/boot.ipxe.0', bootScript);

  router.get(
    '/ipxe',
    named('ipxe', (c: Koa.Context) => {
      const { machine, query } = machineQuery(c);
      const info = requestInfo(c);
      info.mac = machine.mac;
      info.uuid = machine.uuid;
      const ip = clientIp(c);
      // The script is fetched by the machine itself: from now on its downloads (which carry no MAC) are its own.
      if (machine.mac) timeline.bindAddress(ip, machine.mac);
      // Every query parameter is a label for matchbox groups' selectors (boot-lookup.ts).
      const result = store.boot({ ...machine, labels: labelsFromQuery(c.query).labels, rawQuery: c.querystring });
      noteLookup(c, result);
      const rendered = result.value ? renderBoot(result.value, baseUrl) : undefined;
      const miss = rendered ? undefined : lookupMiss(result, store.dataPath);
      timeline.record({
        step: 'http.ipxe',
        mac: machine.mac,
        uuid: machine.uuid,
        ip,
        // What the script names, so the timeline can tell when every file was fetched.
        detail: Object.assign(lookupDetail(c, result, miss), { kernel: rendered?.kernelUrl, initrds: rendered?.initrdUrls, hostname: query.hostname, serial: query.serial }),
      });
      if (miss) fail(c, miss.status, miss.body, miss.reason);
      c.type = 'text/plain';
      c.body = rendered!.script;
    }),
  );

  return router;
}
