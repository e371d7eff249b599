import Router from '@koa/router';
import type { AppContext } from '../appliance.ts';
import { parseMachineQuery } from './machine-query.ts';
import { answerBadRequest, answerNoConfig, noteLookup } from './lookup-response.ts';
import { clientIp, requestInfo } from './request-log.ts';

/** /cloud?uuid=&mac=: the cloud config text, fetched by the booted OS (so the client IP is the machine's). */
export function cloudRouter(app: AppContext): Router {
  const router = new Router();
  router.get('/cloud', (c) => {
    const info = requestInfo(c);
    info.route = 'cloud';
    const parsed = parseMachineQuery(c.query);
    if (!parsed.ok) return answerBadRequest(c, parsed.reason);
    const { machine } = parsed;
    info.mac = machine.mac;
    info.uuid = machine.uuid;
    const result = app.store.cloud(machine);
    noteLookup(c, result);
    if (result.value) {
      c.type = 'text/plain';
      c.body = result.value.text;
    } else answerNoConfig(c, result, app.store.dataPath);
    app.timeline.record({
      step: 'http.cloud',
      mac: machine.mac,
      uuid: machine.uuid,
      ip: clientIp(c),
      detail: { status: c.status, found: result.value !== undefined, key: result.decidedBy?.key, file: result.decidedBy?.path },
    });
  });
  return router;
}
