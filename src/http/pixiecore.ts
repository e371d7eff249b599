import Router from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { renderPixiecore } from '../store/boot-config.ts';
import { parseMacParam } from './machine-query.ts';
import { answerBadRequest, answerNoConfig, noteLookup } from './lookup-response.ts';
import { clientIp, requestInfo } from './request-log.ts';

/**
 * Pixiecore's API mode (`pixiecore api <url>/pixiecore`): it asks for each MAC it sees
 * booting and treats any non-200 as "ignore this machine". The caller is the Pixiecore
 * server, not the machine, so its address is not bound to the MAC.
 */
export function pixiecoreRouter(app: AppContext): Router {
  const router = new Router();
  router.get('/pixiecore/v1/boot/:mac', (c) => {
    const info = requestInfo(c);
    info.route = 'pixiecore';
    const parsed = parseMacParam(c.params.mac ?? '');
    if (!parsed.ok) return answerBadRequest(c, parsed.reason);
    info.mac = parsed.mac;
    const result = app.store.boot({ mac: parsed.mac });
    noteLookup(c, result);
    const body = result.value ? renderPixiecore(result.value, app.config.baseUrl) : undefined;
    if (body) c.body = body;
    else answerNoConfig(c, result, app.store.dataPath);
    app.timeline.record({
      step: 'http.pixiecore',
      mac: parsed.mac,
      detail: {
        status: c.status,
        found: body !== undefined,
        key: result.decidedBy?.key,
        file: result.decidedBy?.path,
        from: clientIp(c),
        ...(body ? { kernel: body.kernel, initrds: body.initrd } : {}),
      },
    });
  });
  return router;
}
