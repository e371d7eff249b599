import Router, { type RouterMiddleware } from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { renderBoot } from '../store/boot-config.ts';
import { parseMachineQuery } from './machine-query.ts';
import { answerBadRequest, answerNoConfig, noteLookup } from './lookup-response.ts';
import { clientIp, requestInfo } from './request-log.ts';

/**
 * The chain script every iPXE client is sent to first: it asks iPXE to report who it is.
 * `${mac}` is the booting NIC (not `${net0/mac}`), `hexhyp` survives every URL parser;
 * the relative URL resolves against wherever this script was fetched from.
 */
export const BOOT_SCRIPT = '#!ipxe\nchain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}&serial=${serial}\n';

/** /boot.ipxe (and the `.0` dnsmasq's pxe-service asks for) and /ipxe, the per-machine boot script. */
export function ipxeRouter(app: AppContext): Router {
  const router = new Router();

  const bootScript: RouterMiddleware = (c) => {
    requestInfo(c).route = 'boot.ipxe';
    app.timeline.record({ step: 'http.boot-script', ip: clientIp(c), detail: { status: 200 } });
    c.type = 'text/plain';
    c.body = BOOT_SCRIPT;
  };
  router.get('/boot.ipxe', bootScript);
  router.get('/boot.ipxe.0', bootScript);

  router.get('/ipxe', (c) => {
    const info = requestInfo(c);
    info.route = 'ipxe';
    const parsed = parseMachineQuery(c.query);
    if (!parsed.ok) return answerBadRequest(c, parsed.reason);
    const { machine, query } = parsed;
    info.mac = machine.mac;
    info.uuid = machine.uuid;
    const ip = clientIp(c);
    // The script is fetched by the machine itself: from now on its downloads (which carry no MAC) are its own.
    if (machine.mac) app.timeline.bindAddress(ip, machine.mac);
    const result = app.store.boot(machine);
    noteLookup(c, result);
    const rendered = result.value ? renderBoot(result.value, app.config.baseUrl) : undefined;
    if (rendered) {
      c.type = 'text/plain';
      c.body = rendered.script;
    } else answerNoConfig(c, result, app.store.dataPath);
    app.timeline.record({
      step: 'http.ipxe',
      mac: machine.mac,
      uuid: machine.uuid,
      ip,
      detail: {
        status: c.status,
        found: rendered !== undefined,
        key: result.decidedBy?.key,
        file: result.decidedBy?.path,
        // What the script names, so the timeline can tell when every file was fetched.
        ...(rendered ? { kernel: rendered.kernelUrl, initrds: rendered.initrdUrls } : {}),
        ...(query.hostname ? { hostname: query.hostname } : {}),
        ...(query.serial ? { serial: query.serial } : {}),
      },
    });
  });

  return router;
}
