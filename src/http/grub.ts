import type { BootTimeline } from '../events/timeline.ts';
import { renderGrubConfig } from '../render/grub-config.ts';
import type { Store } from '../store/store.ts';
import { failure } from './errors.ts';
import type { LeanRoutes } from './lean-path.ts';
import { lookupMiss } from './lookup-response.ts';
import { lookupRequester } from './machine-query.ts';

export interface GrubRoutesDeps {
  store: Pick<Store, 'boot' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
  baseUrl: string;
}

/**
 * /grub?mac=&uuid=: the GRUB config of one machine, as matchbox serves it, for GRUB builds
 * with the http module (`configfile (http,host:port)/grub?mac=${net_default_mac}`). The same
 * boot config and renderer as the TFTP hand-over; kernels and initrds are named as HTTP URLs.
 * A boot route like /ipxe, so answered on the lean path (lean-path.ts).
 */
export function grubRoutes({ store, timeline, baseUrl }: GrubRoutesDeps): LeanRoutes {
  return {
    '/grub': {
      name: 'grub',
      answer(r) {
        const { machine, result } = lookupRequester(r, store, timeline);
        const { ip } = r;
        const key = result.decidedBy?.key;
        const file = result.decidedBy?.path;
        if (!result.value) {
          const miss = lookupMiss(result, store.dataPath);
          timeline.record({ step: 'grub.config', mac: machine.mac, uuid: machine.uuid, ip, detail: { via: 'http', status: miss.status, path: r.path, found: false, key, file, reason: miss.reason } });
          failure(miss.status, miss.body, miss.reason);
        }
        const rendered = renderGrubConfig(result.value, { baseUrl, transport: 'http', machine, key: key ?? 'default' });
        const reason = rendered.problems.length ? rendered.problems.join('; ') : undefined;
        timeline.record({
          step: 'grub.config',
          mac: machine.mac,
          uuid: machine.uuid,
          ip,
          detail: { via: 'http', status: 200, found: true, key, file, kernel: rendered.kernel, initrds: rendered.initrds, reason },
        });
        return rendered.text;
      },
    },
  };
}
