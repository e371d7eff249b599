import test from 'ava';
import { readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { diffConfigTrees, readConfigTree, writeConfigTree } from '../../src/store/config-tree.ts';
import { dataDir } from './fixtures.ts';

test('readConfigTree: the config directories only, symlinks followed, editor leftovers skipped', async (t) => {
  const dir = await dataDir({ 'boot/default.json': '{"kernel":"/k"}', 'boot/.default.json.swp': 'x', 'profiles/w.json': '{"id":"w"}', 'dhcp/hosts/a.json': '{}', 'README.md': 'x' });
  t.teardown(() => dir.cleanup());
  await symlink('../profiles/w.json', path.join(dir.root, 'boot', 'w.json'));
  const tree = await readConfigTree(dir.root);
  t.deepEqual([...tree.keys()].sort(), ['boot/default.json', 'boot/w.json', 'profiles/w.json'].sort());
  t.is(tree.get('boot/w.json')!.toString(), '{"id":"w"}');
});

test('writeConfigTree: makes the directory hold exactly the tree, leaves dhcp/ alone, removes emptied directories', async (t) => {
  const dir = await dataDir({ 'boot/default.json': 'old', 'boot/mac/52-54-00-00-00-01.json': 'gone', 'cloud/default': 'same', 'dhcp/hosts/a.json': '{}' });
  t.teardown(() => dir.cleanup());
  const next = new Map([
    ['boot/default.json', Buffer.from('new')],
    ['cloud/default', Buffer.from('same')],
    ['generic/a/b.txt', Buffer.from('deep')],
  ]);
  const changes = await writeConfigTree(dir.root, next);
  t.deepEqual(changes, { added: ['generic/a/b.txt'], changed: ['boot/default.json'], removed: ['boot/mac/52-54-00-00-00-01.json'] });
  t.is(await readFile(path.join(dir.root, 'boot/default.json'), 'utf8'), 'new');
  t.deepEqual(await readdir(path.join(dir.root, 'boot')), ['default.json']);
  t.is(await readFile(path.join(dir.root, 'dhcp/hosts/a.json'), 'utf8'), '{}');
  t.deepEqual(diffConfigTrees(await readConfigTree(dir.root), next), { added: [], changed: [], removed: [] });
});

test('writeConfigTree: a path that climbs out of the directory is refused', async (t) => {
  const dir = await dataDir();
  t.teardown(() => dir.cleanup());
  await t.throwsAsync(writeConfigTree(dir.root, new Map([['boot/../../escape', Buffer.from('x')]])), { message: /outside/ });
});
