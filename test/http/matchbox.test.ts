import test, { type ExecutionContext } from 'ava';
import { profileBootConfig } from '../../src/http/matchbox.ts';
import { renderBoot } from '../../src/render/ipxe-script.ts';
import { ETCD_IGNITION, MATCHBOX_FILES, NODE_MACS, PROXY_IGNITION } from '../store/matchbox-fixture.ts';
import { startServer } from './server.ts';

async function start(t: ExecutionContext, files: Record<string, string | object> = MATCHBOX_FILES) {
  const s = await startServer(files);
  const matchbox = s.ctx.matchbox!;
  await matchbox.open();
  t.teardown(async () => {
    await matchbox.close();
    await s.close();
  });
  return { ...s, matchbox, get: (p: string) => fetch(`${s.url}${p}`) };
}

test('/metadata: the machine group metadata, selectors and request as matchbox env lines', async (t) => {
  const s = await start(t);
  const res = await s.get('/metadata?mac=52-54-00-89-D8-10&foo=bar');
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
  t.is(
    await res.text(),
    [
      'ETCD_INITIAL_CLUSTER=node1=http://node1.example.com:2380,node2=http://node2.example.com:2380,node3=http://node3.example.com:2380',
      'ETCD_NAME=node1',
      'MAC=52:54:00:89:d8:10',
      'NETWORK_CLIENT_PORT=2379',
      'NETWORK_DOMAIN=example.com',
      'REQUEST_QUERY_FOO=bar',
      'REQUEST_QUERY_MAC=52:54:00:89:d8:10',
      'REQUEST_RAW_QUERY=mac=52-54-00-89-D8-10&foo=bar',
      '',
    ].join('\n'),
  );
  // No labels: the default group, and an empty raw query, as matchbox prints it.
  t.is(
    await (await s.get('/metadata')).text(),
    'ETCD_INITIAL_CLUSTER=node1=http://node1.example.com:2380,node2=http://node2.example.com:2380,node3=http://node3.example.com:2380\nREQUEST_RAW_QUERY=\n',
  );
});

test('/ignition: each node its rendered Ignition JSON; the default group its file unchanged', async (t) => {
  const s = await start(t);
  for (const [i, mac] of NODE_MACS.entries()) {
    const res = await s.get(`/ignition?uuid=1cff2cd8-f00a-42c8-9426-f55e6a1847f6&mac=${mac.replaceAll(':', '-')}`);
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
    const text = await res.text();
    t.is(
      text,
      ETCD_IGNITION.replaceAll('{{.etcd_name}}', `node${i + 1}`)
        .replace('{{.etcd_initial_cluster}}', 'node1=http://node1.example.com:2380,node2=http://node2.example.com:2380,node3=http://node3.example.com:2380')
        .replace('{{.network.domain}}', 'example.com')
        .replace('{{.network.client_port}}', '2379'),
    );
    const ign = JSON.parse(text) as { ignition: { version: string }; storage: { files: { contents: { source: string } }[] } };
    t.is(ign.ignition.version, '3.4.0');
    t.is(ign.storage.files[0]?.contents.source, `data:,node${i + 1}`);
  }
  const proxy = await s.get('/ignition?mac=52:54:00:00:00:99');
  t.is(proxy.status, 200);
  t.is(await proxy.text(), PROXY_IGNITION, 'a .ign without {{ is served byte for byte');
});

test('/generic: golden render for node1; node3 lacks a key: 500 naming the template, the key and the machine', async (t) => {
  const s = await start(t);
  const res = await s.get('/generic?mac=52:54:00:89:d8:10&foo=bar');
  t.is(res.status, 200);
  t.is(await res.text(), '# etcd member node1\nETCD_NAME=node1\nPEER_0=node2\nPEER_1=node3\nMAC=52:54:00:89:d8:10\nQUERY_MAC=52:54:00:89:d8:10\nRAW_QUERY=mac=52:54:00:89:d8:10&foo=bar\nFIRST=yes\n');

  const missing = await s.get('/generic?mac=52:54:00:89:d8:12');
  t.is(missing.status, 500);
  const body = await missing.text();
  t.regex(body, /^template generic\/etcd\.env\.tmpl:3: executing \{\{range \$i, \$peer := \.peers\}\}: map has no entry for key "peers", rendering for mac=52:54:00:89:d8:12\n$/);
  t.true(
    s.lines.some((l) => l.path === '/generic' && l.status === 500 && /"peers"/.test(String(l.reason))),
    'and a log line',
  );

  // The default group's profile names no generic template: 404 saying so.
  const none = await s.get('/generic');
  t.is(none.status, 404);
  t.regex(await none.text(), /profile profiles\/etcd-proxy\.json \(group groups\/proxy, for a machine that sent no labels\) names no generic_id/);
});

test('no group at all: 404 naming why each group lost; a never-parsed group blocks the default with a 500', async (t) => {
  const files = { ...MATCHBOX_FILES };
  delete files['data/groups/proxy.json'];
  const s = await start(t, files);
  const res = await s.get('/metadata?mac=52:54:00:00:00:01');
  t.is(res.status, 404);
  t.regex(await res.text(), /no matchbox group matches mac=52:54:00:00:00:01 \(groups\/node3: mac is "52:54:00:00:00:01", selector wants "52:54:00:89:d8:12"; /);

  await s.dir.write('data/groups/proxy.json', MATCHBOX_FILES['data/groups/proxy.json']!);
  await s.dir.write('data/groups/node4.json', '{"selector": {"mac": "52:54:00:00:00:01"');
  await s.matchbox.reload();
  const blocked = await s.get('/metadata?mac=52:54:00:00:00:01');
  t.is(blocked.status, 500);
  t.regex(await blocked.text(), /only the default group groups\/proxy matches .* broken group files may be meant for it: .*node4\.json: not valid JSON/);
  t.is((await s.get(`/metadata?mac=${NODE_MACS[0]}`)).status, 200, 'a machine its own group matches is unaffected');
});

test('a broken edit keeps the last good version serving over HTTP', async (t) => {
  const s = await start(t);
  await s.dir.write('data/ignition/etcd.ign', '{"ignition": {"version": "3.4.0"}, "x": "{{.etcd_name}"}');
  await s.matchbox.reload();
  const res = await s.get(`/ignition?mac=${NODE_MACS[1]}`);
  t.is(res.status, 200);
  t.regex(await res.text(), /data:,node2/);
  t.true(s.matchbox.problems().some((p) => p.path.endsWith('ignition/etcd.ign') && p.lastGoodServing));
});

test('profileBootConfig: the winning profile as a BootConfig the iPXE renderer renders unchanged', async (t) => {
  const s = await start(t);
  const baseUrl = s.ctx.config.baseUrl;
  const answer = profileBootConfig(s.matchbox, { labels: { mac: NODE_MACS[2] }, rawQuery: `mac=${NODE_MACS[2]}` }, baseUrl);
  if (!answer.ok) return t.fail(answer.reason);
  t.is(answer.group.id, 'node3');
  t.is(answer.profile?.id, 'etcd');
  t.deepEqual(answer.value, {
    kernel: '/images/fcos/kernel',
    initrd: ['/images/fcos/initramfs.img'],
    cmdline: `initrd=initrd0 console=ttyS0 hostname=node3 ignition.config.url=${baseUrl}/ignition?uuid=\${uuid}&mac=\${mac:hexhyp}`,
  });
  t.regex(renderBoot(answer.value, baseUrl).script, /^#!ipxe\nkernel http:\/\/127\.0\.0\.1:\d+\/images\/fcos\/kernel initrd=initrd0 console=ttyS0 hostname=node3 /);
  const proxy = profileBootConfig(s.matchbox, { labels: {}, rawQuery: '' }, baseUrl);
  t.true(proxy.ok && proxy.value.cmdline === 'initrd=initrd0 console=ttyS0', 'initrd=<file name> points at the renamed image');
  const none = profileBootConfig({ selectGroup: () => ({ ...s.matchbox.selectGroup({}), group: undefined, losers: [] }) }, { labels: {}, rawQuery: '' }, baseUrl);
  t.like(none, { ok: false, status: 404 });
});

test('the seed layout beside it keeps working: /ipxe and /cloud from boot/ and cloud/ for machines no group selects', async (t) => {
  const s = await start(t);
  t.regex(await (await s.get('/ipxe?mac=52:54:00:00:00:99')).text(), /images\/debian\/linux/);
  t.is(await (await s.get('/cloud')).text(), 'd-i preseed {{ not a template\n');
  // With profiles/ there, cloud/etcd.yaml is a matchbox template (a profile's cloud_id), not a misnamed seed file.
  t.false(s.store.problems().some((p) => p.path.endsWith('cloud/etcd.yaml')));
});

test('/ipxe with both layouts: boot/mac beats a group, a matching group beats boot/default, boot/default beats the default group; the group renders its profile with its metadata', async (t) => {
  const files = { ...MATCHBOX_FILES, 'data/boot/mac/52:54:00:89:d8:11.json': { kernel: '/images/seed-node2' } };
  const s = await start(t, files);
  const node1 = await (await s.get('/ipxe?uuid=&mac=52-54-00-89-d8-10')).text();
  t.regex(node1, /^kernel \S+\/images\/fcos\/kernel /m, 'node1: its group (step 2)');
  t.regex(node1, /hostname=node1/, 'args templated with the group metadata');
  const node2 = await (await s.get('/ipxe?mac=52-54-00-89-d8-11')).text();
  t.regex(node2, /^kernel \S+\/images\/seed-node2/m, 'node2: its own boot/mac file (step 1)');
  const other = await (await s.get('/ipxe?mac=52-54-00-00-00-99')).text();
  t.regex(other, /^kernel \S+\/images\/debian\/linux/m, 'any other machine: boot/default before the default group (step 3)');
  // The same lookup decides GRUB's config and what DHCP knows of the machine.
  const grub = await (await s.get('/grub?mac=52-54-00-89-d8-10')).text();
  t.regex(grub, /^linux '\(http,[^)]+\)\/images\/fcos\/kernel' .*hostname=node1/m);
});

test('/ipxe with groups only: the default group answers machines no group selects; a template naming a missing key is a 500 naming it', async (t) => {
  const files = Object.fromEntries(Object.entries(MATCHBOX_FILES).filter(([k]) => !k.startsWith('data/boot/')));
  const s = await start(t, files);
  const proxy = await s.get('/ipxe?mac=52-54-00-00-00-99');
  t.is(proxy.status, 200);
  t.regex(await proxy.text(), /^kernel \S+\/images\/fcos\/kernel initrd=initrd0 console=ttyS0/m, 'etcd-proxy, the default group');
  const broken = { ...files, 'data/profiles/etcd.json': { ...(files['data/profiles/etcd.json'] as object), boot: { kernel: '/images/k', initrd: [], args: ['x={{.no_such_key}}'] } } };
  const s2 = await start(t, broken);
  const res = await s2.get('/ipxe?mac=52-54-00-89-d8-10');
  t.is(res.status, 500);
  t.regex(await res.text(), /no_such_key/);
});

test('/cloud with both layouts: a group’s cloud template (its profile’s cloud_id) for its machine, cloud/default for the others', async (t) => {
  const s = await start(t);
  const node1 = await s.get('/cloud?mac=52-54-00-89-d8-10');
  t.is(node1.status, 200);
  t.regex(await node1.text(), /^#cloud-config/);
  t.is(await (await s.get('/cloud?mac=52-54-00-00-00-99')).text(), 'd-i preseed {{ not a template\n');
});
