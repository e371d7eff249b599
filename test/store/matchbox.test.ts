import path from 'node:path';
import test from 'ava';
import { matchboxTemplateProblem } from '../../src/render/matchbox.ts';
import { labelsFromQuery, type MatchboxGroup, matchGroup, matchOrder, parseMatchboxGroup, parseMatchboxProfile, selectorMismatches, templateData, templateKey } from '../../src/store/matchbox.ts';
import { MatchboxStore } from '../../src/store/matchbox-store.ts';
import { dataDir, eventually, memoryLog } from './fixtures.ts';
import { MATCHBOX_FILES, NODE_MACS } from './matchbox-fixture.ts';

const group = (id: string, selector: Record<string, string>, metadata: MatchboxGroup['metadata'] = {}): MatchboxGroup => ({ id, name: id, profile: 'p', selector, metadata });

test('a group file: mac selectors in any form are normalised, the id defaults to the file name, metadata must be an object', (t) => {
  for (const form of ['52-54-00-89-D8-10', '5254.0089.d810', '525400 89d810'.replace(' ', ''), '52:54:00:89:d8:10']) {
    t.deepEqual(parseMatchboxGroup(JSON.stringify({ profile: 'etcd', selector: { mac: form } }), 'node1').selector, { mac: '52:54:00:89:d8:10' }, form);
  }
  const g = parseMatchboxGroup('{"profile":"etcd","selector":{"MAC":"52-54-00-89-D8-10","os":"installed"}}', 'from-file');
  t.is(g.id, 'from-file');
  t.deepEqual(g.selector, { MAC: '52:54:00:89:d8:10', os: 'installed' });
  t.deepEqual(g.metadata, {});
  t.throws(() => parseMatchboxGroup('{"selector":{"mac":"nope"}}', 'x'), { message: /selector\.mac: "nope" is not a MAC address/ });
  t.throws(() => parseMatchboxGroup('{"metadata":[1]}', 'x'), { message: /metadata/ });
  t.throws(() => parseMatchboxGroup('{"selector":{"a":1}}', 'x'), { message: /selector values must be strings/ });
  t.throws(() => parseMatchboxGroup('{', 'x'), { message: /not valid JSON/ });
});

test('a profile file: id required, unknown fields ignored as Go does, null lists are empty', (t) => {
  const p = parseMatchboxProfile('{"id":"etcd","boot":{"kernel":"/k","initrd":null,"cmdline":{"old":"field"}},"ignition_id":"etcd.ign","extra":1}');
  t.deepEqual(p, { id: 'etcd', name: '', boot: { kernel: '/k', initrd: [], args: [] }, ignition_id: 'etcd.ign', cloud_id: '', generic_id: '' });
  t.throws(() => parseMatchboxProfile('{"name":"x"}'), { message: /id is required/ });
  t.throws(() => parseMatchboxProfile('{"id":"x","boot":{"args":[1]}}'), { message: /boot\.args\.0: args entries must be strings/ });
});

test('labels: every query parameter, the first of a repeated one, mac normalised under its own key and dropped when it does not parse', (t) => {
  t.deepEqual(labelsFromQuery({ mac: '52-54-00-89-D8-10', os: 'installed', foo: ['a', 'b'] }).labels, { mac: '52:54:00:89:d8:10', os: 'installed', foo: 'a' });
  t.deepEqual(labelsFromQuery({ MAC: '5254.0089.d810' }).labels, { MAC: '52:54:00:89:d8:10' });
  const empty = labelsFromQuery({ mac: '', uuid: '' });
  t.deepEqual(empty.labels, { uuid: '' });
  t.is(empty.ignored[0]?.key, 'mac');
});

test('matching order: most selectors first; equal counts by the sorted key=value string, the greater first; identical selectors by id', (t) => {
  const groups = [
    group('default', {}),
    group('os', { os: 'installed' }),
    group('region', { region: 'us' }),
    group('both', { os: 'installed', region: 'us' }),
    group('b-twin', { os: 'x' }),
    group('a-twin', { os: 'x' }),
  ];
  t.deepEqual(
    matchOrder(groups).map((g) => g.id),
    ['both', 'region', 'a-twin', 'b-twin', 'os', 'default'],
  );
  // A machine that satisfies two one-selector groups gets the one tried first (matchbox: "region=us" > "os=installed").
  const both = matchGroup(
    groups.filter((g) => g.id !== 'both'),
    { os: 'installed', region: 'us' },
  );
  t.is(both.group?.id, 'region');
  const os = both.losers.find((l) => l.group.id === 'os');
  t.true(os?.outranked);
  t.is(matchGroup(groups, { os: 'installed', region: 'us' }).group?.id, 'both');
  t.is(matchGroup(groups, {}).group?.id, 'default');
  t.is(matchGroup(groups.slice(1), {}).group, undefined);
});

test('why a group lost: the selectors that differ, with what the machine sent; a missing label compares as "" (Group.Matches)', (t) => {
  const g = group('node1', { mac: '52:54:00:89:d8:10', os: 'installed' });
  t.deepEqual(selectorMismatches(g, { mac: '52:54:00:89:d8:11' }), [
    { key: 'mac', want: '52:54:00:89:d8:10', got: '52:54:00:89:d8:11' },
    { key: 'os', want: 'installed', got: undefined },
  ]);
  t.deepEqual(selectorMismatches(group('blank', { os: '' }), {}), []);
});

test('template data: metadata at the top, selectors over it (lower-cased keys), request reserved', (t) => {
  const data = templateData(group('g', { MAC: '52:54:00:89:d8:10' }, { mac: 'meta', name: 'n1', request: 'overwritten' }), { MAC: '52:54:00:89:d8:10', foo: 'bar' }, 'MAC=52-54-00-89-d8-10&foo=bar');
  t.deepEqual(data, { mac: '52:54:00:89:d8:10', name: 'n1', request: { query: { MAC: '52:54:00:89:d8:10', foo: 'bar' }, raw_query: 'MAC=52-54-00-89-d8-10&foo=bar' } });
});

test('template names cannot leave their directory', (t) => {
  t.is(templateKey('../../etc/passwd'), 'etc/passwd');
  t.is(templateKey('sub/./x.ign'), 'sub/x.ign');
  t.is(templateKey('a\0b'), undefined);
  t.is(templateKey('..'), undefined);
});

async function openStore(t: import('ava').ExecutionContext, files = MATCHBOX_FILES) {
  const dir = await dataDir(files);
  const { log, lines } = memoryLog();
  const store = new MatchboxStore(path.join(dir.root, 'data'), { log, pollIntervalMs: 60_000, debounceMs: 20, checkTemplate: matchboxTemplateProblem });
  await store.open();
  t.teardown(async () => {
    await store.close();
    await dir.cleanup();
  });
  return { dir, store, lines };
}

test('the store loads the etcd cluster and selects each node by its MAC in any form, the rest by the default group', async (t) => {
  const { store } = await openStore(t);
  t.deepEqual(store.problems(), []);
  t.true(store.hasData());
  t.deepEqual(
    store
      .groups()
      .map((g) => g.id)
      .sort(),
    ['node1', 'node2', 'node3', 'proxy'],
  );
  for (const [i, mac] of NODE_MACS.entries()) {
    const selection = store.selectGroup(labelsFromQuery({ mac: mac.toUpperCase().replaceAll(':', '-') }).labels);
    t.is(selection.group?.id, `node${i + 1}`);
    t.is(selection.profile?.state === 'ok' ? selection.profile.value.id : undefined, 'etcd');
    t.is(selection.losers.filter((l) => l.mismatches.some((m) => m.key === 'mac')).length, 2, 'the other nodes lost on mac');
    t.true(
      selection.losers.some((l) => l.group.id === 'proxy' && l.outranked),
      'the default matched too but was tried last',
    );
  }
  const other = store.selectGroup({ mac: '52:54:00:00:00:01' });
  t.is(other.group?.id, 'proxy');
  t.is(other.profile?.state === 'ok' ? other.profile.value.id : undefined, 'etcd-proxy');
  // cloud/: only what a profile names is a template; the seed's cloud/default.cfg is left alone.
  t.is(store.template('cloud', 'etcd.yaml').state, 'ok');
  t.is(store.template('cloud', 'default.cfg').state, 'missing');
  t.is(store.template('ignition', 'sub/../etcd.ign').state, 'ok');
  t.is(store.profile('nope').state, 'missing');
});

test('a broken file keeps its last good version serving and is reported; one that never parsed is reported and skipped', async (t) => {
  const { store, dir, lines } = await openStore(t);
  await dir.write('data/groups/node1.json', '{"profile": "etcd", "selector": {"mac": ');
  await dir.write('data/ignition/etcd.ign', '{"ignition":{"version":"3.4.0"},"x":"{{.etcd_name"}');
  await dir.write('data/groups/node4.json', '{"selector": {"mac": "not-a-mac"}}');
  await store.reload();
  const problems = store.problems();
  const byFile = (f: string) => problems.find((p) => p.path.endsWith(f));
  t.like(byFile('groups/node1.json'), { dir: 'groups', lastGoodServing: true });
  t.regex(byFile('groups/node1.json')?.reason ?? '', /not valid JSON/);
  t.like(byFile('ignition/etcd.ign'), { dir: 'ignition', lastGoodServing: true });
  t.regex(byFile('ignition/etcd.ign')?.reason ?? '', /template ignition\/etcd\.ign:1: .*unclosed action|unterminated/);
  t.like(byFile('groups/node4.json'), { lastGoodServing: false });
  t.is(store.selectGroup({ mac: NODE_MACS[0] }).group?.metadata.etcd_name, 'node1', 'last good node1 still selects');
  const ign = store.template('ignition', 'etcd.ign');
  t.true(ign.state === 'ok' && ign.stale !== undefined && ign.value.text.includes('{{.etcd_name}}'));
  t.deepEqual(
    store.selectGroup({}).unparsedGroups.map((g) => path.basename(g.path)),
    ['node4.json'],
  );
  t.true(lines.some((l) => l.level === 50 && String(l.path).endsWith('groups/node1.json') && l.lastGoodServing === true));
  // Fixed again: the disk version serves and the problem is gone.
  await dir.write('data/groups/node1.json', MATCHBOX_FILES['data/groups/node1.json']!);
  await store.reload();
  t.falsy(store.problems().find((p) => p.path.endsWith('groups/node1.json')));
});

test('changes are picked up without a reload call (watchers)', async (t) => {
  const { store, dir } = await openStore(t);
  await dir.write('data/groups/node1.json', { ...(MATCHBOX_FILES['data/groups/node1.json'] as object), metadata: { etcd_name: 'renamed' } });
  await eventually(() => (store.selectGroup({ mac: NODE_MACS[0] }).group?.metadata.etcd_name === 'renamed' ? true : undefined), 'the edited group');
  await dir.remove('data/groups/node2.json');
  await eventually(() => (store.selectGroup({ mac: NODE_MACS[1] }).group?.id === 'proxy' ? true : undefined), 'node2 removed');
  t.pass();
});

test('misplaced files are reported: a non-.json group, a directory under profiles/', async (t) => {
  const { store } = await openStore(t, { 'data/groups/readme.txt': 'hello', 'data/profiles/old/x.json': { id: 'x' }, 'data/groups/.hidden.json': '{', 'data/groups/g.json~': '{' });
  const reasons = store.problems().map((p) => `${path.relative(store.dataPath, p.path)}: ${p.reason}`);
  t.deepEqual(reasons, ['groups/readme.txt: not a .json file: matchbox reads groups/<id>.json only', 'profiles/old: unexpected directory: matchbox reads <id>.json files at the top level only']);
  t.false(store.hasData() && store.groups().length > 0);
});
