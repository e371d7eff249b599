import test from 'ava';
import { BOOT_SCRIPT } from '../../src/render/ipxe-script.ts';
import { parseMac } from '../../src/net/mac.ts';
import { curl, startServer, type TestServer } from './server.ts';

const UUID = '1cff2cd8-f00a-42c8-9426-f55e6a1847f6';
const MAC = '52:54:00:c7:b6:64';
const KERNEL = Buffer.from('kernel image bytes\n'.repeat(100));
const INITRD = Buffer.from('initrd bytes\n'.repeat(300));

const FILES: Record<string, string | object> = {
  'images/os/vmlinuz': KERNEL.toString(),
  'images/os/initrd.gz': INITRD.toString(),
  'data/boot/default.json': { kernel: '/images/os/vmlinuz', initrd: ['/images/os/initrd.gz'], cmdline: { console: 'ttyS0', who: 'default' } },
  [`data/boot/mac/${MAC}.json`]: { kernel: '/images/os/vmlinuz', initrd: ['/images/os/initrd.gz'], cmdline: { who: 'mac', quiet: true } },
  [`data/boot/uuid/${UUID}.json`]: { kernel: 'images/os/vmlinuz', initrd: ['/images/os/initrd.gz'], cmdline: 'who=uuid cloud={{base_url}}/cloud?uuid=${uuid}' },
  'data/cloud/default.yaml': '#cloud-config\nhostname: default\n',
  [`data/cloud/uuid/${UUID.toUpperCase()}`]: '#cloud-config\nhostname: by-uuid\n',
};

let s: TestServer;
test.before(async () => {
  s = await startServer(FILES);
});
test.after.always(async () => {
  await s?.close();
});

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${s.url}${path}`, init);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

test('/boot.ipxe and /boot.ipxe.0 serve the chain script of wire.md', async (t) => {
  const expected = '#!ipxe\nchain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}&serial=${serial}&arch=${buildarch}\n';
  t.is(BOOT_SCRIPT, expected);
  for (const p of ['/boot.ipxe', '/boot.ipxe.0']) {
    const r = await get(p);
    t.is(r.status, 200);
    t.is(r.text, expected);
    t.regex(r.type ?? '', /^text\/plain/);
  }
  const head = await fetch(`${s.url}/boot.ipxe`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers.get('content-length'), String(Buffer.byteLength(expected)));
});

test('the boot chain with curl: boot.ipxe → ipxe?uuid&mac → kernel and initrd of that machine', async (t) => {
  const chain = await curl([`${s.url}/boot.ipxe`]);
  const line = chain.body.toString().split('\n')[1]!;
  t.true(line.startsWith('chain '));
  // What iPXE does: expand its settings, then resolve the relative URL against the script's own URL.
  const expanded = line
    .slice('chain '.length)
    .replace('${uuid}', UUID.toUpperCase())
    .replace('${mac:hexhyp}', MAC.replaceAll(':', '-'))
    .replace('${domain}', '')
    .replace('${hostname}', 'node1')
    .replace('${serial}', 'SN123');
  const next = new URL(expanded, `${s.url}/boot.ipxe`).toString();
  const script = await curl([next]);
  t.is(script.status, 200);
  const lines = script.body.toString().trimEnd().split('\n');
  t.is(lines[0], '#!ipxe');
  t.is(lines[1], `kernel ${s.url}/images/os/vmlinuz initrd=initrd0 who=uuid cloud=${s.url}/cloud?uuid=\${uuid}`);
  t.is(lines[2], `initrd --name initrd0 ${s.url}/images/os/initrd.gz`);
  t.is(lines[3], 'boot');
  const kernel = await curl([lines[1]!.split(' ')[1]!]);
  const initrd = await curl([lines[2]!.split(' ')[3]!]);
  t.true(kernel.body.equals(KERNEL));
  t.true(initrd.body.equals(INITRD));
});

test('/ipxe: uuid beats mac beats default, MAC in every form', async (t) => {
  const who = async (q: string) => /who=(\w+)/.exec((await get(`/ipxe?${q}`)).text)?.[1];
  t.is(await who(`uuid=${UUID}&mac=${MAC}`), 'uuid');
  t.is(await who(`uuid=${UUID.toUpperCase()}`), 'uuid');
  t.is(await who(`uuid=00000000-0000-0000-0000-000000000000&mac=${MAC}`), 'mac');
  for (const form of [MAC, '52-54-00-c7-b6-64', '5254.00c7.b664', '525400c7b664', '52:54:00:C7:B6:64', '52-54-00-C7-B6-64']) {
    t.is(await who(`mac=${encodeURIComponent(form)}`), 'mac', form);
  }
  t.is(await who('mac=52:54:00:00:00:01'), 'default');
  t.is(await who('uuid=&mac=&domain=&hostname=&serial='), 'default', 'iPXE sends empty settings as empty values');
});

test('/ipxe renders the object cmdline sorted with bare flags and the initrd name', async (t) => {
  const r = await get(`/ipxe?mac=${MAC}`);
  t.is(r.text, `#!ipxe\nkernel ${s.url}/images/os/vmlinuz initrd=initrd0 quiet who=mac\ninitrd --name initrd0 ${s.url}/images/os/initrd.gz\nboot\n`);
  t.regex(r.type ?? '', /^text\/plain/);
});

test('/ipxe and /cloud reject bad query strings with 400 saying why', async (t) => {
  const bad: [string, RegExp][] = [
    ['/ipxe?mac=52:54:00:zz:00:01', /mac: "52:54:00:zz:00:01" is not a MAC address/],
    ['/ipxe?uuid=not-a-uuid', /uuid: "not-a-uuid" is not a UUID/],
    ['/ipxe?mac=525400c7b664&mac=525400c7b665', /mac: given more than once/],
    ['/cloud?mac=1', /mac: "1" is not a MAC/],
  ];
  for (const [p, reason] of bad) {
    const r = await get(p);
    t.is(r.status, 400, p);
    t.regex(r.text, reason);
  }
});

test('/cloud: the file text by uuid, mac or default', async (t) => {
  t.is((await get(`/cloud?uuid=${UUID}`)).text, '#cloud-config\nhostname: by-uuid\n');
  const d = await get(`/cloud?mac=${MAC}`);
  t.is(d.status, 200);
  t.is(d.text, '#cloud-config\nhostname: default\n');
});

test('/pixiecore/v1/boot/:mac: the JSON of the Pixiecore API spec', async (t) => {
  const res = await fetch(`${s.url}/pixiecore/v1/boot/${MAC}`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
  t.deepEqual(await res.json(), {
    kernel: `${s.url}/images/os/vmlinuz`,
    initrd: [`${s.url}/images/os/initrd.gz`],
    cmdline: { quiet: true, who: 'mac' },
  });
  const other = await fetch(`${s.url}/pixiecore/v1/boot/52-54-00-00-00-01`);
  t.deepEqual(((await other.json()) as { cmdline: unknown }).cmdline, { console: 'ttyS0', who: 'default' });
  t.is((await get('/pixiecore/v1/boot/nonsense')).status, 400);
});

test('unknown method on a known path: 405 with Allow', async (t) => {
  const res = await fetch(`${s.url}/ipxe`, { method: 'POST' });
  t.is(res.status, 405);
  t.regex(res.headers.get('allow') ?? '', /GET/);
  t.is((await get('/nothing-here')).status, 404);
  t.is((await get('/healthz')).text, 'ok\n');
});

test('every request is logged with MAC/UUID and the file that answered; metrics by route and status', async (t) => {
  await get(`/ipxe?uuid=${UUID}&mac=5254.00c7.b664`);
  const line = s.lines.find((l) => l.path === '/ipxe' && l.uuid === UUID && l.mac === MAC);
  t.truthy(line);
  t.is(line!.status, 200);
  t.regex(String(line!.file), new RegExp(`boot/uuid/${UUID}\\.json$`));
  t.is(line!.key, `uuid/${UUID}`);
  const metrics = await s.ctx.metrics.httpRequests.get();
  t.true(metrics.values.some((v) => v.labels.route === 'ipxe' && v.labels.status === '200' && v.value >= 1));
  t.true(metrics.values.some((v) => v.labels.route === 'ipxe' && v.labels.status === '400'));
});

// Serial: other tests fetch /ipxe from the same 127.0.0.1 and would re-bind the address.
test.serial('timeline: /ipxe ties the client address to its MAC, so image downloads are filed under the machine', async (t) => {
  const mac = parseMac('52:54:00:aa:bb:01')!;
  await get('/boot.ipxe');
  await get(`/ipxe?mac=${mac}`);
  await curl(['-r', '0-9', `${s.url}/images/os/vmlinuz`]);
  const machine = s.ctx.timeline.get(mac);
  t.truthy(machine);
  const steps = machine!.events.map((e) => e.step);
  t.true(steps.includes('http.ipxe'));
  t.true(steps.includes('http.image'));
  const image = machine!.events.find((e) => e.step === 'http.image')!;
  t.is(image.detail.status, 206);
  t.is(image.detail.path, '/images/os/vmlinuz');
  t.is(s.ctx.timeline.macForAddress('127.0.0.1'), mac);
  const ipxe = machine!.events.find((e) => e.step === 'http.ipxe')!;
  t.like(ipxe.detail, { status: 200, found: true, key: 'default', kernel: `${s.url}/images/os/vmlinuz`, initrds: [`${s.url}/images/os/initrd.gz`] });

  // Pixiecore asks on behalf of a machine: its own address must not be bound to that MAC.
  const viaPixiecore = parseMac('52:54:00:aa:bb:02')!;
  await get(`/pixiecore/v1/boot/${viaPixiecore}`);
  t.is(s.ctx.timeline.get(viaPixiecore)?.events[0]?.step, 'http.pixiecore');
  t.is(s.ctx.timeline.macForAddress('127.0.0.1'), mac);
});
