import test from 'ava';
import { startServer } from './server.ts';

test('no match: 404 with a text body saying what was looked up', async (t) => {
  const s = await startServer({ 'data/boot/mac/52:54:00:00:00:09.json': { kernel: '/k' } });
  t.teardown(() => s.close());
  const res = await fetch(`${s.url}/ipxe?uuid=1CFF2CD8-F00A-42C8-9426-F55E6A1847F6&mac=52-54-00-00-00-01`);
  t.is(res.status, 404);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
  t.is(
    await res.text(),
    `no boot config for uuid=1cff2cd8-f00a-42c8-9426-f55e6a1847f6 mac=52:54:00:00:00:01: looked up boot/uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6 (no file), boot/mac/52:54:00:00:00:01 (no file), boot/default (no file) in ${s.store.dataPath}\n`,
  );
  const cloud = await fetch(`${s.url}/cloud?mac=52:54:00:00:00:09`);
  t.is(cloud.status, 404);
  t.regex(await cloud.text(), /no cloud config for mac=52:54:00:00:00:09: looked up cloud\/mac\/52:54:00:00:00:09 \(no file\), cloud\/default \(no file\)/);
  const pixie = await fetch(`${s.url}/pixiecore/v1/boot/52:54:00:00:00:01`);
  t.is(pixie.status, 404);
  t.regex(await pixie.text(), /no boot config for mac=52:54:00:00:00:01/);
  t.true(s.lines.some((l) => l.path === '/ipxe' && l.status === 404 && /looked up/.test(String(l.reason))));
});

test('changed and broken files over HTTP: edits served without restart, a broken edit keeps the last good version, a never-good file is a 500 naming it', async (t) => {
  const s = await startServer({ 'data/boot/default.json': { kernel: '/k1' }, 'data/boot/mac/52:54:00:00:00:02.json': '{"kernel": ' });
  t.teardown(() => s.close());
  const script = async (q = '') => (await fetch(`${s.url}/ipxe${q}`)).text();
  t.regex(await script(), /kernel http:\S+\/k1\n/);

  await s.dir.write('data/boot/default.json', { kernel: '/k2' });
  const deadline = Date.now() + 10_000;
  while (!/\/k2\n/.test(await script()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.regex(await script(), /\/k2\n/);

  await s.dir.write('data/boot/default.json', '{"kernel": "/k3", "cmdline": 7}');
  while (!s.store.problems().some((p) => p.path.endsWith('default.json')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.regex(await script(), /\/k2\n/, 'last good version keeps serving');
  t.true(s.lines.some((l) => l.level === 50 && String(l.path).endsWith('data/boot/default.json') && /cmdline/.test(String(l.reason))));

  const broken = await fetch(`${s.url}/ipxe?mac=52:54:00:00:00:02`);
  t.is(broken.status, 500);
  t.regex(await broken.text(), /boot\/mac\/52:54:00:00:00:02 \(.*52:54:00:00:00:02\.json: broken: not valid JSON/);
});
