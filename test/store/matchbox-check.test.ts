import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/log.ts';
import { matchboxTemplateProblem } from '../../src/render/matchbox.ts';
import { checkMatchbox } from '../../src/store/matchbox-check.ts';
import { PROJECT_ROOT } from '../helpers/appliance.ts';

const log = createLogger({ level: 'silent', format: 'json' });

test('the examples pass', async (t) => {
  for (const example of ['etcd-cluster', 'install-then-disk']) {
    const r = await checkMatchbox(path.join(PROJECT_ROOT, 'examples', example), { log, checkTemplate: matchboxTemplateProblem });
    t.truthy(r, example);
    t.deepEqual(r?.problems, [], example);
  }
});

test('a data path without groups or profiles is not a matchbox directory', async (t) => {
  t.is(await checkMatchbox(path.join(PROJECT_ROOT, 'data'), { log, checkTemplate: matchboxTemplateProblem }), undefined);
});

test('links and ambiguities: a missing profile or template, two default groups, identical selectors, an odd selector key, a template that does not parse', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-mbxcheck-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const put = async (rel: string, body: object | string) => {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), typeof body === 'string' ? body : JSON.stringify(body));
  };
  await put('profiles/p.json', { id: 'p', boot: { kernel: '/images/k' }, ignition_id: 'gone.ign', generic_id: 'bad.tmpl' });
  await put('generic/bad.tmpl', 'x={{.a');
  await put('groups/d1.json', { id: 'd1', profile: 'p' });
  await put('groups/d2.json', { id: 'd2', profile: 'p' });
  await put('groups/a.json', { id: 'a', profile: 'p', selector: { mac: '52:54:00:00:00:01' } });
  await put('groups/b.json', { id: 'b', profile: 'p', selector: { mac: '52-54-00-00-00-01' } });
  await put('groups/c.json', { id: 'c', profile: 'nope', selector: { 'Bad Key': 'x' } });
  const r = await checkMatchbox(dir, { log, checkTemplate: matchboxTemplateProblem });
  const reasons = (r?.problems ?? []).map((p) => `${path.relative(dir, p.path)}: ${p.reason}`);
  const has = (re: RegExp) =>
    t.true(
      reasons.some((x) => re.test(x)),
      `${re} in:\n${reasons.join('\n')}`,
    );
  has(/^groups\/d2\.json: a second default group \(no selectors\), beside groups\/d1/);
  has(/^groups\/b\.json: same selectors as groups\/a \(mac=52:54:00:00:00:01\)/);
  has(/^groups\/c\.json: names profile "nope", and there is no .*profiles\/nope\.json/);
  has(/^groups\/c\.json: selector "Bad Key" is not a label/);
  has(/^profiles\/p\.json: ignition_id names ignition\/gone\.ign, which does not exist/);
  has(/^generic\/bad\.tmpl: /);
});
