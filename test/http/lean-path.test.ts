import test from 'ava';
import { parseQuery } from '../../src/http/lean-path.ts';
import { curl, startServer, type TestServer } from './server.ts';

const MAC = '52:54:00:4c:ea:01';
let s: TestServer;

test.before(async () => {
  s = await startServer({
    'images/os/vmlinuz': 'kernel',
    'data/boot/default.json': { kernel: '/images/os/vmlinuz', cmdline: { who: 'default' } },
    [`data/boot/mac/${MAC}.json`]: { kernel: '/images/os/vmlinuz', cmdline: { who: 'mac' } },
  });
});
test.after.always(async () => {
  await s?.close();
});

/** Koa's c.query (koa/lib/search-params.js): URLSearchParams, repeated keys as an array. */
function koaQuery(text: string): Record<string, string | string[]> {
  const params = new URLSearchParams(text);
  const out: Record<string, string | string[]> = {};
  for (const key of params.keys()) {
    const values = params.getAll(key);
    Object.defineProperty(out, key, { value: values.length <= 1 ? values[0]! : values, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

test.serial('the query is parsed as Koa parses it, with or without anything to decode', (t) => {
  const cases = [
    '',
    'mac=52-54-00-4c-ea-01',
    'uuid=&mac=52-54-00-4c-ea-01&domain=&hostname=node1&serial=SN1&arch=x86_64',
    'a=1&a=2&a=3&b',
    '&&a=&=x&b==c',
    'mac=52%3A54%3A00%3A4c%3Aea%3A01&hostname=a+b',
    'x=%zz&y=%E2%82%AC',
    '__proto__=1&constructor=2',
    '__proto__=1&__proto__=2&toString=3&toString=4',
  ];
  for (const text of cases) t.deepEqual({ ...parseQuery(text) }, koaQuery(text), text);
});

test.serial('boot routes answer like the Koa routes did: HEAD, trailing slash and case, OPTIONS and 405 with Allow', async (t) => {
  const head = await fetch(`${s.url}/ipxe?mac=${MAC}`, { method: 'HEAD' });
  t.is(head.status, 200);
  const body = await (await fetch(`${s.url}/ipxe?mac=${MAC}`)).text();
  t.is(head.headers.get('content-length'), String(Buffer.byteLength(body)));
  t.is(head.headers.get('content-type'), 'text/plain; charset=utf-8');
  t.regex(await (await fetch(`${s.url}/IPXE/?mac=${MAC}`)).text(), /who=mac/);
  const options = await fetch(`${s.url}/boot.ipxe`, { method: 'OPTIONS' });
  t.is(options.status, 200);
  t.regex(options.headers.get('allow') ?? '', /GET/);
  const post = await fetch(`${s.url}/grub`, { method: 'POST' });
  t.is(post.status, 405);
  t.regex(post.headers.get('allow') ?? '', /HEAD, GET/);
  t.true(s.lines.some((l) => l.method === 'POST' && l.path === '/grub' && l.status === 405));
});

test.serial('one log line, one count and the timeline step per boot request, on every route of the lean path', async (t) => {
  const before = s.lines.length;
  t.is((await fetch(`${s.url}/boot.ipxe.0`)).status, 200);
  t.is((await fetch(`${s.url}/ipxe?mac=${MAC}&hostname=node1`)).status, 200);
  const grub = await fetch(`${s.url}/grub?mac=${MAC}`);
  t.is(grub.status, 200);
  t.regex(await grub.text(), /who=mac/);
  const lines = s.lines.slice(before).filter((l) => typeof l.method === 'string');
  t.deepEqual(
    lines.map((l) => [l.path, l.status]),
    [
      ['/boot.ipxe.0', 200],
      ['/ipxe', 200],
      ['/grub', 200],
    ],
  );
  t.like(lines[1], { mac: MAC, key: `mac/${MAC}`, msg: `GET /ipxe?mac=${MAC}&hostname=node1 200` });
  t.regex(String(lines[1]!.file), new RegExp(`boot/mac/${MAC}\\.json$`));
  t.is(typeof lines[2]!.ms, 'number');
  const counts = (await s.ctx.metrics.httpRequests.get()).values;
  for (const route of ['boot.ipxe', 'ipxe', 'grub'])
    t.true(
      counts.some((v) => v.labels.route === route && v.labels.status === '200'),
      route,
    );
  const steps = s.ctx.timeline.get(MAC as never)!.events.map((e) => e.step);
  t.true(steps.includes('http.boot-script'));
  t.true(steps.includes('http.ipxe'));
  t.true(steps.includes('grub.config'));
  const ipxe = s.ctx.timeline.get(MAC as never)!.events.findLast((e) => e.step === 'http.ipxe')!;
  t.like(ipxe.detail, { status: 200, found: true, key: `mac/${MAC}`, hostname: 'node1' });
});

test.serial('a bad query on the lean path: 400 saying why, logged with the reason and counted', async (t) => {
  const r = await fetch(`${s.url}/grub?mac=52:54:00:zz:00:01`);
  t.is(r.status, 400);
  t.regex(await r.text(), /^bad request: mac: "52:54:00:zz:00:01" is not a MAC address.*\n$/);
  t.true(s.lines.some((l) => l.path === '/grub' && l.status === 400 && /is not a MAC/.test(String(l.reason))));
  const counts = (await s.ctx.metrics.httpRequests.get()).values;
  t.true(counts.some((v) => v.labels.route === 'grub' && v.labels.status === '400'));
});

test.serial('a request target in absolute form (through a proxy) is routed by its path, as Koa routes it (curl --request-target)', async (t) => {
  const before = s.lines.length;
  const ipxe = await curl(['--request-target', `${s.url}/ipxe?mac=${MAC}`, `${s.url}/`]);
  t.is(ipxe.status, 200);
  t.regex(ipxe.body.toString(), /who=mac/);
  const grub = await curl(['--request-target', `${s.url}/grub?mac=${MAC}`, `${s.url}/`]);
  t.is(grub.status, 200);
  t.regex(grub.body.toString(), /who=mac/);
  // Koa's routes take the same form: the lean path hands over what it does not serve.
  t.is((await curl(['--request-target', `${s.url}/healthz`, `${s.url}/`])).body.toString(), 'ok\n');
  const lines = s.lines.slice(before).filter((l) => typeof l.method === 'string');
  t.deepEqual(
    lines.map((l) => [l.path, l.status, l.mac]),
    [
      ['/ipxe', 200, MAC],
      ['/grub', 200, MAC],
      ['/healthz', 200, MAC],
    ],
  );
});

test.serial('other paths still go to Koa', async (t) => {
  t.is(await (await fetch(`${s.url}/healthz`)).text(), 'ok\n');
  t.is((await fetch(`${s.url}/images/os/vmlinuz`)).status, 200);
  t.is((await fetch(`${s.url}/ipxe-not`)).status, 404);
});
