/**
 * The peer for the boot routes' requests/s: Koa 3 + @koa/router answering each route with a
 * fixed body (the text the appliance renders for it), no lookup, no logging, no metrics.
 * Usage: node --import tsx bench/http/bare-koa.ts PORT ROUTE=FILE... (e.g. /ipxe=script.ipxe)
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';

const [port, ...routes] = process.argv.slice(2);
if (!port || !routes.length || routes.some((r) => !r.includes('='))) throw new Error('usage: bare-koa.ts PORT ROUTE=FILE...');

const app = new Koa();
const router = new Router();
for (const pair of routes) {
  const [route, file] = [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)];
  const text = readFileSync(file, 'utf8');
  router.get(route, (c) => {
    c.type = 'text/plain';
    c.body = text;
  });
}
app.use(router.routes());
const server = createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
