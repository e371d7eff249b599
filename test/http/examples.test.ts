/** Golden renders of examples/ over real HTTP, every endpoint a machine of each example asks. */
import test from 'ava';
import { cpSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/appliance.ts';
import { startServer } from './server.ts';

async function serve(t: import('ava').ExecutionContext, example: string) {
  const s = await startServer({});
  cpSync(path.join(PROJECT_ROOT, 'examples', example), s.ctx.config.dataPath, { recursive: true });
  const matchbox = s.ctx.matchbox!;
  await matchbox.open();
  t.teardown(async () => {
    await matchbox.close();
    await s.close();
  });
  const text = async (p: string) => {
    const res = await fetch(`${s.url}${p}`);
    return { res, body: await res.text() };
  };
  return { ...s, matchbox, text };
}

test('examples/etcd-cluster: each node its name and peers in /ipxe, /ignition, /cloud, /generic and /metadata', async (t) => {
  const s = await serve(t, 'etcd-cluster');
  t.deepEqual(s.matchbox.problems(), []);
  for (const i of [1, 2, 3]) {
    const mac = `52-54-00-A1-00-0${i}`;
    const ipxe = await s.text(`/ipxe?mac=${mac}`);
    t.is(ipxe.res.status, 200);
    t.regex(ipxe.body, new RegExp(`^kernel ${s.url}/images/fedora-coreos/kernel .*etcd\\.name=node${i}`, 'm'));
    t.regex(ipxe.body, new RegExp(`ignition\\.config\\.url=${s.url}/ignition\\?mac=\\$\\{mac:hexhyp\\}`));
    const ign = await s.text(`/ignition?mac=${mac}`);
    t.is(ign.res.status, 200);
    const parsed = JSON.parse(ign.body) as { ignition: { version: string }; storage: { files: { contents: { source: string } }[] } };
    t.is(parsed.ignition.version, '3.4.0');
    t.is(parsed.storage.files[0]?.contents.source, `data:,node${i}`);
    t.regex((await s.text(`/cloud?mac=${mac}`)).body, new RegExp(`^hostname: node${i}\\.cluster\\.example$`, 'm'));
    t.regex((await s.text(`/generic?mac=${mac}`)).body, new RegExp(`^ETCD_NAME=node${i}$`, 'm'));
    t.regex((await s.text(`/metadata?mac=${mac}`)).body, new RegExp(`^ETCD_NAME=node${i}$`, 'm'));
  }
  const stranger = await s.text('/ipxe?mac=52-54-00-ff-ff-ff');
  t.is(stranger.res.status, 404, 'no default group, no boot/default: nothing for a machine no group selects');
});

test('examples/install-then-disk: network boot gets the installer; the installed system’s os=installed fetch gets its own config', async (t) => {
  const s = await serve(t, 'install-then-disk');
  t.deepEqual(s.matchbox.problems(), []);
  const ipxe = await s.text('/ipxe?mac=52-54-00-b2-00-01');
  t.regex(ipxe.body, /coreos\.inst\.ignition_url=http:\/\/\S+\/ignition\?uuid=\$\{uuid\}&mac=\$\{mac:hexhyp\}&os=installed/);
  t.is(JSON.parse((await s.text('/ignition?mac=52-54-00-b2-00-01')).body).passwd, undefined, 'the installer’s own config');
  const installed = JSON.parse((await s.text('/ignition?mac=52-54-00-b2-00-01&os=installed')).body) as { passwd: { users: { sshAuthorizedKeys: string[] }[] } };
  t.regex(installed.passwd.users[0]!.sshAuthorizedKeys[0]!, /^ssh-ed25519 /);
  t.true(readdirSync(path.join(PROJECT_ROOT, 'examples')).includes('README.md'));
});
