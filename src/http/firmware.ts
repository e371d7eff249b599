import Router from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { clientIp, requestInfo } from './request-log.ts';

/**
 * GET|HEAD /firmware/<name>: the verified iPXE builds over HTTP, for UEFI HTTP Boot (which
 * sends HEAD first and needs Content-Length, and wants `application/efi`, wire.md).
 * Served from the bytes the catalog checksummed, so only files named in SHA256SUMS and
 * matching it are ever sent; there is no path to traverse, just a name to look up.
 */
export function firmwareRouter(app: AppContext): Router {
  const router = new Router();
  router.get('/firmware/:name', (c) => {
    const info = requestInfo(c);
    info.route = 'firmware';
    const name = c.params.name ?? '';
    info.file = name;
    const fw = app.firmware.resolve(name);
    if (!fw) {
      const why = app.firmware.explain(name) ?? 'unavailable';
      info.reason = why;
      c.status = 404;
      c.type = 'text/plain';
      // The catalog's explanation names the firmware folder: fine for an operator, not for a client.
      c.body = `404 ${app.firmware.isListed(name) ? 'firmware unavailable (missing or failing its checksum)' : 'no such firmware'}: /firmware/${name}\n`;
    } else {
      c.set('ETag', `"${fw.sha256}"`);
      c.set('Cache-Control', 'no-cache');
      c.type = name.toLowerCase().endsWith('.efi') ? 'application/efi' : 'application/octet-stream';
      c.status = 200;
      if (c.fresh) {
        c.status = 304;
      } else {
        // Koa sets Content-Length from the buffer, and keeps it on HEAD while sending no body.
        c.body = fw.data;
      }
    }
    app.timeline.record({ step: 'http.image', ip: clientIp(c), detail: { path: `/firmware/${name}`, status: c.status, bytes: fw && c.status === 200 ? fw.size : undefined } });
  });
  return router;
}
