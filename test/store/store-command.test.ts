/** `store push|pull|diff`: what it says before it ever dials etcd (the e2e test runs it against a real cluster). */
import test from 'ava';
import { storeCommand } from '../../src/commands/store.ts';
import { ConfigError } from '../../src/config.ts';
import { dataDir } from './fixtures.ts';

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), env }, out, err };
}

test('usage errors name what is wrong', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /expected push, pull or diff/],
    [['sync', 'data'], /got "sync"/],
    [['push'], /needs the data directory/],
    [['push', 'a', 'b'], /unexpected argument "b"/],
    [['push', 'data'], /needs --store etcd:\/\//],
    [['push', 'data', '--store', 'etcd://nohost'], /--store: "etcd:\/\/nohost": "nohost" is not HOST:PORT/],
    [['push', 'data', '--store', 'etcd://a:1', '--store-cert', 'c.pem'], /--store-cert and --store-key go together/],
    [['push', 'data', '--bogus'], /store: Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) await t.throwsAsync(storeCommand(args, io().io), { instanceOf: ConfigError, message }, args.join(' '));
});

test('BOOTCFG_STORE stands in for --store; a push of a directory validate rejects never dials etcd', async (t) => {
  const dir = await dataDir({ 'boot/default.json': '{"kernel": ', 'boot/mac/nope.json': '{"kernel":"/k"}' });
  t.teardown(() => dir.cleanup());
  // Port 1 on loopback: a dial would fail loudly, and the refusal must come first.
  const { io: streams, err } = io({ BOOTCFG_STORE: 'etcd://127.0.0.1:1' });
  t.is(await storeCommand(['push', dir.root], streams), 1);
  const text = err.join('');
  t.regex(text, /boot\/default\.json: /);
  t.regex(text, /nope\.json: file name is not a MAC address/);
  t.regex(text, /2 bad file\(s\) in .*: nothing pushed/);
  t.notRegex(text, /UNAVAILABLE|etcd at/);
});

test('diff against an etcd that cannot be asked exits 2, not 1 ("differences")', async (t) => {
  const dir = await dataDir({ 'boot/default.json': '{"kernel":"/k"}' });
  t.teardown(() => dir.cleanup());
  const { io: streams, err } = io();
  t.is(await storeCommand(['diff', dir.root, '--store', 'etcd://127.0.0.1:1'], streams), 2);
  t.regex(err.join(''), /store diff: etcd at 127\.0\.0\.1:1: /);
});
