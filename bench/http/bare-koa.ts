/**
 * The peer for /ipxe requests/s: Koa 3 + @koa/router answering one route with a fixed
 * body (the script the appliance renders), no lookup, no logging, no metrics.
 * Usage: node --import tsx bench/http/bare-koa.ts PORT SCRIPT_FILE
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Koa from 'koa';
import Router from '@koa/router';

const [port, scriptFile] = process.argv.slice(2);
if (!port || !scriptFile) throw new Error('usage: bare-koa.ts PORT SCRIPT_FILE');
const script = readFileSync(scriptFile, 'utf8');

const app = new Koa();
const router = new Router();
router.get('/ipxe', (c) => {
  c.type = 'text/plain';
  c.body = script;
});
app.use(router.routes());
const server = createServer(app.callback());
server.keepAliveTimeout = 65_000;
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
