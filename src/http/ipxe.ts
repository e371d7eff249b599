import type { BootTimeline } from '../events/timeline.ts';
import { BOOT_SCRIPT, renderBoot } from '../render/ipxe-script.ts';
import type { Store } from '../store/store.ts';
import { failure } from './errors.ts';
import type { LeanRoute, LeanRoutes } from './lean-path.ts';
import { lookupDetail, lookupMiss } from './lookup-response.ts';
import { lookupRequester } from './machine-query.ts';

export interface IpxeRoutesDeps {
  store: Pick<Store, 'boot' | 'dataPath'>;
  timeline: Pick<BootTimeline, 'record' | 'bindAddress'>;
  /** Where the script's kernel and initrd URLs point. */
  baseUrl: string;
}

/**
 * /boot.ipxe (and the `.0` dnsmasq's pxe-service asks for) and /ipxe, the per-machine boot
 * script: every iPXE client asks for both, so they are answered on the lean path (lean-path.ts).
 */
export function ipxeRoutes({ store, timeline, baseUrl }: IpxeRoutesDeps): LeanRoutes {
  const bootScript: LeanRoute = {
    name: 'boot.ipxe',
    answer(r) {
      timeline.record({ step: 'http.boot-script', ip: r.ip, detail: { status: 200 } });
      return BOOT_SCRIPT;
    },
  };

  const ipxe: LeanRoute = {
    name: 'ipxe',
    answer(r) {
      const { machine, query, result } = lookupRequester(r, store, timeline);
      const { ip } = r;
      const rendered = result.value ? renderBoot(result.value, baseUrl) : undefined;
      const miss = rendered ? undefined : lookupMiss(result, store.dataPath);
      timeline.record({
        step: 'http.ipxe',
        mac: machine.mac,
        uuid: machine.uuid,
        ip,
        // What the script names, so the timeline can tell when every file was fetched.
        detail: Object.assign(lookupDetail(r.path, result, miss), { kernel: rendered?.kernelUrl, initrds: rendered?.initrdUrls, hostname: query.hostname, serial: query.serial }),
      });
      if (miss) failure(miss.status, miss.body, miss.reason);
      return rendered!.script;
    },
  };

  return { '/boot.ipxe': bootScript, '/boot.ipxe.0': bootScript, '/ipxe': ipxe };
}
