import test from 'ava';
import { rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Metrics } from '../../src/metrics.ts';
import { checkDataPath } from '../../src/store/data-files.ts';
import { FileStore } from '../../src/store/file-store.ts';
import { describeLookup, type MachineQuery } from '../../src/store/store.ts';
import { parseMac } from '../../src/net/mac.ts';
import { parseUuid } from '../../src/net/uuid.ts';
import { dataDir, eventually, memoryLog, type DataDir } from './fixtures.ts';

const UUID = parseUuid('1cff2cd8-f00a-42c8-9426-f55e6a1847f6')!;
const MAC = parseMac('52:54:00:c7:b6:64')!;
const OTHER_MAC = parseMac('52:54:00:00:00:01')!;

const boot = (name: string) => ({ kernel: `/images/${name}` });

async function openStore(dir: DataDir, opts: { pollIntervalMs?: number } = {}) {
  const { log, lines } = memoryLog();
  const metrics = new Metrics();
  const store = new FileStore(dir.root, { log, metrics, pollIntervalMs: opts.pollIntervalMs ?? 60_000, debounceMs: 20 });
  await store.open();
  return { store, lines, metrics };
}

const kernelFor = (store: FileStore, q: MachineQuery) => store.boot(q).value?.kernel;

test('uuid beats mac beats default; each result says which file answered and what missed', async (t) => {
  const dir = await dataDir({
    'boot/default.json': boot('default'),
    'boot/mac/52:54:00:c7:b6:64.json': boot('mac'),
    'boot/uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6.json': boot('uuid'),
  });
  t.teardown(() => dir.cleanup());
  const { store } = await openStore(dir);
  t.teardown(() => store.close());

  t.is(kernelFor(store, { uuid: UUID, mac: MAC }), '/images/uuid');
  t.is(kernelFor(store, { mac: MAC }), '/images/mac');
  t.is(kernelFor(store, { uuid: parseUuid('00000000-0000-0000-0000-000000000001'), mac: MAC }), '/images/mac');
  t.is(kernelFor(store, { mac: OTHER_MAC }), '/images/default');
  t.is(kernelFor(store, {}), '/images/default');

  const r = store.boot({ uuid: parseUuid('00000000-0000-0000-0000-000000000001'), mac: OTHER_MAC });
  t.deepEqual(
    r.steps.map((s) => [s.key, s.outcome]),
    [
      ['uuid/00000000-0000-0000-0000-000000000001', 'miss'],
      ['mac/52:54:00:00:00:01', 'miss'],
      ['default', 'hit'],
    ],
  );
  t.is(r.decidedBy?.path, path.join(dir.root, 'boot/default.json'));
});

test('no default and no match: every step missed, described for the 404 body', async (t) => {
  const dir = await dataDir({ 'boot/mac/52:54:00:c7:b6:64.json': boot('mac') });
  t.teardown(() => dir.cleanup());
  const { store } = await openStore(dir);
  t.teardown(() => store.close());
  const r = store.boot({ mac: OTHER_MAC, uuid: UUID });
  t.is(r.value, undefined);
  t.is(r.decidedBy, undefined);
  t.is(describeLookup(r, dir.root), `boot config for uuid=${UUID} mac=${OTHER_MAC}: looked up boot/uuid/${UUID} (no file), boot/mac/${OTHER_MAC} (no file), boot/default (no file) in ${dir.root}`);
  t.is(store.cloud({ mac: MAC }).value, undefined, 'cloud is looked up separately');
});

const macFileNames = ['52:54:00:c7:b6:64', '52-54-00-C7-B6-64.json', '5254.00c7.b664.json', '525400C7B664', '52:54:00:C7:B6:64.JSON'];
for (const name of macFileNames) {
  test(`a boot file named mac/${name} answers every MAC form`, async (t) => {
    const dir = await dataDir({ [`boot/mac/${name}`]: boot('m') });
    t.teardown(() => dir.cleanup());
    const { store } = await openStore(dir);
    t.teardown(() => store.close());
    for (const form of ['52:54:00:c7:b6:64', '52-54-00-c7-b6-64', '5254.00c7.b664', '525400c7b664', '52:54:00:C7:B6:64']) {
      t.is(kernelFor(store, { mac: parseMac(form) }), '/images/m', form);
    }
    t.deepEqual(store.problems(), []);
  });
}

test('UUID file names and queries in any case; cloud files with any extension', async (t) => {
  const dir = await dataDir({
    'boot/uuid/1CFF2CD8-F00A-42C8-9426-F55E6A1847F6.json': boot('u'),
    'cloud/uuid/1cff2cd8f00a42c89426f55e6a1847f6.yaml': '#cloud-config\n',
    'cloud/default': '#!/bin/sh\necho default\n',
    'cloud/mac/52-54-00-c7-b6-64.cfg': 'd-i x string y\n',
  });
  t.teardown(() => dir.cleanup());
  const { store } = await openStore(dir);
  t.teardown(() => store.close());
  t.is(kernelFor(store, { uuid: parseUuid('1cff2cd8-F00A-42c8-9426-f55e6a1847f6') }), '/images/u');
  t.is(store.cloud({ uuid: UUID }).value?.text, '#cloud-config\n');
  t.is(store.cloud({ mac: MAC }).value?.text, 'd-i x string y\n');
  t.is(store.cloud({ mac: OTHER_MAC }).value?.text, '#!/bin/sh\necho default\n');
});

test('bad names, duplicates and broken files are problems; dotfiles and editor leftovers are skipped', async (t) => {
  const dir = await dataDir({
    'boot/default.json': boot('d'),
    'boot/defualt.json': boot('typo'),
    'boot/default.yaml': 'kernel: x',
    'boot/mac/not-a-mac.json': boot('x'),
    'boot/mac/52-54-00-c7-b6-64.json': boot('first'),
    'boot/mac/525400c7b664.json': boot('second'),
    'boot/uuid/1234.json': boot('x'),
    'boot/macs/52:54:00:c7:b6:64.json': boot('x'),
    'boot/mac/.52:54:00:00:00:01.json.swp': 'garbage',
    'boot/mac/52:54:00:00:00:01.json~': 'garbage',
    'boot/.hidden': 'garbage',
    'cloud/default': 'ok',
  });
  t.teardown(() => dir.cleanup());
  const { store, lines, metrics } = await openStore(dir);
  t.teardown(() => store.close());
  const problems = store.problems().map((p) => [path.relative(dir.root, p.path), p.reason]);
  const byPath = Object.fromEntries(problems) as Record<string, string>;
  t.deepEqual(Object.keys(byPath).sort(), ['boot/default.yaml', 'boot/defualt.json', 'boot/mac/525400c7b664.json', 'boot/mac/not-a-mac.json', 'boot/macs', 'boot/uuid/1234.json']);
  t.regex(byPath['boot/default.yaml']!, /unexpected file/);
  t.regex(byPath['boot/defualt.json']!, /unexpected file/);
  t.regex(byPath['boot/mac/not-a-mac.json']!, /not a MAC/);
  t.regex(byPath['boot/uuid/1234.json']!, /not a UUID/);
  t.regex(byPath['boot/macs']!, /unexpected directory/);
  // The two spellings of one MAC: the first by name wins, the other is reported.
  t.regex(byPath['boot/mac/525400c7b664.json']!, /same mac\/52:54:00:c7:b6:64 as .*52-54-00-c7-b6-64\.json/);
  t.is(kernelFor(store, { mac: MAC }), '/images/first');
  t.is(kernelFor(store, { mac: OTHER_MAC }), '/images/d');
  t.false(problems.some(([p]) => p!.includes('swp') || p!.includes('~') || p!.includes('hidden')));
  t.true(lines.some((l) => l.level === 50 && l.path === path.join(dir.root, 'boot/mac/not-a-mac.json') && typeof l.reason === 'string'));
  t.is(
    (await metrics.storeErrors.get()).values.reduce((n, v) => n + v.value, 0),
    problems.length,
  );
});

test('a file broken from the start stops the lookup instead of falling through to default', async (t) => {
  const dir = await dataDir({ 'boot/default.json': boot('d'), 'boot/mac/52:54:00:c7:b6:64.json': '{"kernel": ' });
  t.teardown(() => dir.cleanup());
  const { store, lines } = await openStore(dir);
  t.teardown(() => store.close());
  const r = store.boot({ mac: MAC });
  t.is(r.value, undefined);
  t.is(r.decidedBy?.outcome, 'broken');
  t.regex(r.decidedBy?.problem ?? '', /not valid JSON/);
  t.regex(describeLookup(r, dir.root), /52:54:00:c7:b6:64\.json: broken: not valid JSON/);
  const logged = lines.find((l) => l.path === path.join(dir.root, 'boot/mac/52:54:00:c7:b6:64.json') && l.level === 50);
  t.truthy(logged);
  t.regex(String(logged!.reason), /not valid JSON/);
  t.false(logged!.lastGoodServing as boolean);
});

test('changes are picked up by the directory watchers (poll off); a broken edit keeps the last good version serving', async (t) => {
  const dir = await dataDir({ 'boot/default.json': boot('v1') });
  t.teardown(() => dir.cleanup());
  const { store, lines, metrics } = await openStore(dir, { pollIntervalMs: 3_600_000 });
  t.teardown(() => store.close());
  t.is(kernelFor(store, {}), '/images/v1');

  await dir.write('boot/default.json', boot('v2'));
  await eventually(() => (kernelFor(store, {}) === '/images/v2' ? true : undefined), 'the edit to be picked up');

  // A new directory appears after start: it gets watched too.
  await dir.write('boot/mac/52:54:00:c7:b6:64.json', boot('mac'));
  await eventually(() => (kernelFor(store, { mac: MAC }) === '/images/mac' ? true : undefined), 'the new mac/ directory to be picked up');

  await dir.write('boot/default.json', '{"kernel": 42}');
  const problem = await eventually(() => store.problems().find((p) => p.path.endsWith('default.json')), 'the broken file to be reported');
  t.true(problem.lastGoodServing);
  t.regex(problem.reason, /kernel/);
  const r = store.boot({});
  t.is(r.value?.kernel, '/images/v2', 'the last good version keeps serving');
  t.true(r.decidedBy?.stale);
  t.true(lines.some((l) => l.level === 50 && l.path === path.join(dir.root, 'boot/default.json') && l.lastGoodServing === true));
  t.true((await metrics.storeErrors.get()).values.some((v) => v.labels.kind === 'boot' && v.value >= 1));

  // Editors that save by rename.
  await writeFile(path.join(dir.root, 'boot/.default.json.tmp'), JSON.stringify(boot('v3')));
  await rename(path.join(dir.root, 'boot/.default.json.tmp'), path.join(dir.root, 'boot/default.json'));
  await eventually(() => (kernelFor(store, {}) === '/images/v3' && !store.boot({}).decidedBy?.stale ? true : undefined), 'the fixed file to serve');
  t.deepEqual(store.problems(), []);

  await dir.remove('boot/mac/52:54:00:c7:b6:64.json');
  await eventually(() => (kernelFor(store, { mac: MAC }) === '/images/v3' ? true : undefined), 'the removed file to stop answering');
  t.true((await metrics.storeReloads.get()).values.some((v) => v.labels.kind === 'boot' && v.value >= 4));
});

test('the poll catches what no watcher sees (a symlink target edited elsewhere)', async (t) => {
  const dir = await dataDir({ 'profiles/worker.json': boot('w1') });
  t.teardown(() => dir.cleanup());
  await dir.write('boot/mac/.keep', '');
  await symlink(path.join(dir.root, 'profiles/worker.json'), path.join(dir.root, 'boot/mac/52:54:00:c7:b6:64.json'));
  const { store } = await openStore(dir, { pollIntervalMs: 100 });
  t.teardown(() => store.close());
  t.is(kernelFor(store, { mac: MAC }), '/images/w1');
  await dir.write('profiles/worker.json', boot('w2'));
  await eventually(() => (kernelFor(store, { mac: MAC }) === '/images/w2' ? true : undefined), 'the symlink target edit');
  t.pass();
});

test('a missing data path is not fatal: lookups miss until it appears', async (t) => {
  const dir = await dataDir();
  t.teardown(() => dir.cleanup());
  const { log, lines } = memoryLog();
  const store = new FileStore(path.join(dir.root, 'later'), { log, pollIntervalMs: 50, debounceMs: 10 });
  await store.open();
  t.teardown(() => store.close());
  t.is(store.boot({}).value, undefined);
  t.true(lines.some((l) => l.level === 40 && /data path does not exist/.test(String(l.msg))));
  await dir.write('later/boot/default.json', boot('late'));
  await eventually(() => (kernelFor(store, {}) === '/images/late' ? true : undefined), 'the data path to appear');
  t.pass();
});

test('checkDataPath judges files as the store does', async (t) => {
  const dir = await dataDir({
    'boot/default.json': boot('d'),
    'boot/mac/zz.json': boot('x'),
    'cloud/uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6': 'x',
    'boot/uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6.json': '{}',
  });
  t.teardown(() => dir.cleanup());
  const check = await checkDataPath(dir.root);
  t.true(check.dataPathExists);
  t.deepEqual(check.configs, { boot: ['default'], cloud: ['uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6'] });
  t.deepEqual(check.problems.map((p) => path.relative(dir.root, p.path)).sort(), ['boot/mac/zz.json', 'boot/uuid/1cff2cd8-f00a-42c8-9426-f55e6a1847f6.json']);
  t.false((await checkDataPath(path.join(dir.root, 'nope'))).dataPathExists);
});

test('the shipped example data is valid', async (t) => {
  const check = await checkDataPath(path.resolve('data'));
  t.deepEqual(check.problems, []);
  t.true(check.configs.boot.includes('default'));
  t.true(check.configs.boot.some((k) => k.startsWith('uuid/')) && check.configs.boot.some((k) => k.startsWith('mac/')));
  t.true(check.configs.cloud.includes('default'));
});

test('a file that becomes the second for its key is reported as a duplicate, not as removed, and answers again once the first goes', async (t) => {
  const dir = await dataDir({ 'boot/mac/52:54:00:c7:b6:64.json': boot('colon') });
  t.teardown(() => dir.cleanup());
  const { store, lines } = await openStore(dir);
  t.teardown(() => store.close());
  const colon = path.join(dir.root, 'boot/mac/52:54:00:c7:b6:64.json');
  // The dashed spelling sorts first, so it answers from now on.
  await dir.write('boot/mac/52-54-00-c7-b6-64.json', boot('dash'));
  await store.reload();
  t.is(kernelFor(store, { mac: MAC }), '/images/dash');
  t.regex(store.problems().find((p) => p.path === colon)?.reason ?? '', /same mac\/52:54:00:c7:b6:64 as/);
  t.false(
    lines.some((l) => l.path === colon && /config removed/.test(String(l.msg))),
    'the file is still there',
  );
  await dir.remove('boot/mac/52-54-00-c7-b6-64.json');
  await store.reload();
  t.is(kernelFor(store, { mac: MAC }), '/images/colon');
  t.deepEqual(store.problems(), []);
});
