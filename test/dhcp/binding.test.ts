/**
 * Interface binding (needs root): the appliance bound to one interface never sees or
 * answers a request arriving on another, and refuses to start DHCP when it cannot bind.
 */
import test from 'ava';
import dgram from 'node:dgram';
import { isRoot, waitFor, type Namespace } from '../helpers/netns.ts';
import { startAppliance } from '../helpers/appliance.ts';
import { MessageType } from '../../src/dhcp/options.ts';
import { createLan, LAN, runPxeClient, startOnLan, testMac } from './scripted.ts';
import { boundDevice, openDeviceSocket, BindDeviceError } from '../../src/net/bind-device.ts';

const maybe = isRoot ? test.serial : test.skip;
const OTHER = { server: '10.88.0.1', client: '10.88.0.50' };

/** tcpdump in `ns` on every interface; returns the lines it printed so far. */
async function capture(ns: Namespace, filter: string): Promise<{ lines: () => string[] }> {
  const child = ns.spawn('tcpdump', ['-i', 'any', '-n', '-l', '-U', filter]);
  const out: string[] = [];
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => out.push(...s.split('\n').filter(Boolean)));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  await waitFor('tcpdump to listen', () => err.includes('listening on'), 10_000);
  return { lines: () => [...out] };
}

maybe('two interfaces: a DISCOVER (and a 4011 request) arriving on the other interface is never seen nor answered (needs root)', async (t) => {
  let other: Namespace | undefined;
  const lan = await createLan({
    clients: 1,
    extra: async (topo) => {
      other = await topo.namespace('oth');
    },
  });
  t.teardown(() => lan.destroy());
  await lan.topo.veth(lan.srv, 'eth1', other!, 'eth0', `${OTHER.server}/24`);
  const app = await startOnLan(lan.srv);
  t.teardown(() => app.stop().then(() => undefined));
  await app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('pxe-bootserver: listening'));
  const dump = await capture(lan.srv, `udp and (src port 67 or src port 4011) and not src host ${OTHER.client}`);

  // On the other network: broadcast DISCOVER, then (with an address) a unicast to our other address's 4011.
  const strayMac = testMac();
  const stray = await runPxeClient(other!, { kind: 'uefi7', mac: strayMac, xid: 0x0bad0001, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 1500 });
  t.is(stray.length, 0, 'no reply on the other network');
  await other!.ip('addr', 'add', `${OTHER.client}/24`, 'dev', 'eth0');
  const stray4011 = await runPxeClient(other!, {
    kind: 'uefi7',
    mac: strayMac,
    xid: 0x0bad0002,
    type: MessageType.REQUEST,
    ciaddr: OTHER.client,
    to: { address: OTHER.server, port: 4011 },
    fromPort: 4011,
    iface: 'eth0',
    waitMs: 1500,
  });
  t.is(stray4011.length, 0, 'no 4011 reply on the other network');

  // The same request on the bound interface is answered: the silence above is the binding, not a dead server.
  const goodMac = testMac();
  const good = await runPxeClient(lan.clients[0]!, { kind: 'uefi7', mac: goodMac, xid: 0x600d0001, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 3000, maxReplies: 1 });
  t.is(good.length, 1);
  await waitFor('the OFFER in the capture', () => dump.lines().length >= 1, 5000);
  await new Promise((r) => setTimeout(r, 300));

  const sent = dump.lines();
  t.is(sent.length, 1, `exactly one packet left the appliance: ${sent.join(' | ')}`);
  t.regex(sent[0]!, /eth0/, 'and it left by eth0');
  t.regex(sent[0]!, new RegExp(`${LAN.server.replaceAll('.', '\\.')}\\.67 > 255\\.255\\.255\\.255\\.68`));
  t.false(
    app.lines.some((l) => l.mac === strayMac),
    'the stray requests were never even seen',
  );
  t.true(app.lines.some((l) => l.mac === goodMac && l.reply === 'OFFER'));
});

maybe('refuses to start DHCP, saying why, when port 67 cannot be bound to the interface (needs root)', async (t) => {
  const lan = await createLan({ clients: 0 });
  t.teardown(() => lan.destroy());
  // Something else already holds 0.0.0.0:67 on every interface of the namespace.
  const squatter = lan.srv.spawn(process.execPath, ['-e', "require('dgram').createSocket('udp4').bind(67, '0.0.0.0', () => console.log('bound'))"]);
  await new Promise<void>((resolve) => squatter.stdout!.once('data', () => resolve()));
  const err = await t.throwsAsync(startOnLan(lan.srv));
  t.regex(err!.message, /cannot bind UDP port 67 to interface eth0/);
  t.regex(err!.message, /Address already in use/);
});

maybe('openDeviceSocket: the kernel reports the device; only packets from that device arrive (needs root)', async (t) => {
  const lan = await createLan({ clients: 1 });
  t.teardown(() => lan.destroy());
  await lan.clients[0]!.ip('addr', 'add', '10.77.0.60/24', 'dev', 'eth0');
  await lan.srv.ip('addr', 'add', '10.99.0.1/32', 'dev', 'lo');
  // Run inside the namespace: a small probe that binds to eth0 and reports what it sees.
  const probe = `
    import { openDeviceSocket, boundDevice } from ${JSON.stringify(new URL('../../src/net/bind-device.ts', import.meta.url).pathname)};
    const { socket, fd } = await openDeviceSocket({ device: 'eth0', port: 9999 });
    console.log('device=' + boundDevice(fd));
    socket.on('message', (m, r) => console.log('got ' + m + ' from ' + r.address));
    setTimeout(() => process.exit(0), 2500);`;
  const child = lan.srv.spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe]);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  await waitFor('probe bound', () => out.includes('device='), 10_000);
  t.regex(out, /device=eth0/);
  // From the namespace itself over lo (another device) and from the client over eth0.
  await lan.srv.exec(process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.send('via-lo',9999,'10.99.0.1',()=>s.close())"]);
  await lan.clients[0]!.exec(process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.send('via-eth0',9999,'10.77.0.1',()=>s.close())"]);
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.regex(out, /got via-eth0 from 10\.77\.0\.60/);
  t.notRegex(out, /via-lo/);
});

test('openDeviceSocket: an unknown device or a bad name is refused with the reason', async (t) => {
  const e1 = await t.throwsAsync(openDeviceSocket({ device: 'nosuchdev0', port: 0, address: '127.0.0.1' }), { instanceOf: BindDeviceError });
  t.regex(e1!.message, /nosuchdev0: No such device/);
  await t.throwsAsync(openDeviceSocket({ device: 'x'.repeat(16), port: 0 }), { instanceOf: BindDeviceError });
  await t.throwsAsync(openDeviceSocket({ device: '', port: 0 }), { instanceOf: BindDeviceError });
  await t.throwsAsync(openDeviceSocket({ device: 'lo', port: 0, address: 'not-an-ip' }), { instanceOf: BindDeviceError });
});

test('openDeviceSocket: a socket on lo round-trips and reads back its device', async (t) => {
  const { socket, fd } = await openDeviceSocket({ device: 'lo', port: 0, address: '127.0.0.1' });
  t.teardown(() => socket.close());
  t.is(boundDevice(fd), 'lo');
  const got = new Promise<string>((resolve) => socket.once('message', (m) => resolve(m.toString())));
  const sender = dgram.createSocket('udp4');
  t.teardown(() => sender.close());
  sender.send('ping', socket.address().port, '127.0.0.1');
  t.is(await got, 'ping');
});

maybe('startAppliance with --dhcp off opens no DHCP socket (needs root)', async (t) => {
  const lan = await createLan({ clients: 0 });
  t.teardown(() => lan.destroy());
  const app = await startAppliance(['--iface', 'eth0', '--address', `${LAN.server}:8080`, '--dhcp', 'off', '--tftp-address', 'off', '--data-path', '/nonexistent-bca'], { ns: lan.srv });
  t.teardown(() => app.stop().then(() => undefined));
  const ss = await lan.srv.exec('ss', ['-uanp']);
  t.notRegex(ss, /:67\b|:4011\b/);
});
