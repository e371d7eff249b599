import Router from '@koa/router';
import type { BootTimeline } from '../events/timeline.ts';
import type { FirmwareCatalog } from '../firmware/catalog.ts';
import { fail } from './errors.ts';
import { clientIp, named, requestInfo } from './request-info.ts';

export interface FirmwareRoutesDeps {
  firmware: Pick<FirmwareCatalog, 'resolve' | 'explain' | 'isListed'>;
  timeline: Pick<BootTimeline, 'record'>;
}

/**
 * GET|HEAD /firmware/<name>: the verified iPXE builds over HTTP, for UEFI HTTP Boot (which
 * sends HEAD first and needs Content-Length, and wants `application/efi`, wire.md).
 * Served from the bytes the catalog checksummed, so only files named in SHA256SUMS and
 * matching it are ever sent; there is no path to traverse, just a name to look up.
 */
export function firmwareRouter({ firmware, timeline }: FirmwareRoutesDeps): Router {
  const router = new Router();
  router.get(
    '/firmware/:name',
    named('firmware', (c) => {
      const name = c.params.name ?? '';
      requestInfo(c).file = name;
      const path = `/firmware/${name}`;
      const fw = firmware.resolve(name);
      if (!fw) {
        const why = firmware.explain(name) ?? 'unavailable';
        timeline.record({ step: 'http.image', ip: clientIp(c), detail: { path, status: 404, reason: why } });
        // The catalog's explanation names the firmware folder: fine for an operator's log, not for a client.
        fail(c, 404, `404 ${firmware.isListed(name) ? 'firmware unavailable (missing or failing its checksum)' : 'no such firmware'}: ${path}`, why);
      }
      c.set('ETag', `"${fw.sha256}"`);
      c.set('Cache-Control', 'no-cache');
      c.type = name.toLowerCase().endsWith('.efi') ? 'application/efi' : 'application/octet-stream';
      c.status = 200;
      // Koa sets Content-Length from the buffer, and keeps it on HEAD while sending no body.
      if (c.fresh) c.status = 304;
      else c.body = fw.data;
      timeline.record({ step: 'http.image', ip: clientIp(c), detail: { path, status: c.status, bytes: c.status === 200 ? fw.size : undefined } });
    }),
  );
  return router;
}
