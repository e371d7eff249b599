/**
 * ProxyDHCP beside the site's own, PXE-unaware DHCP server (Debian dnsmasq-base) on one
 * bridge (needs root): busybox udhcpc gets its address from dnsmasq and nothing from us;
 * a scripted PXE client gets its address offer from dnsmasq and its boot file from us,
 * REQUESTs dnsmasq (we stay silent), then does the 4011 exchange as OVMF does.
 */
import test from 'ava';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, waitFor } from '../helpers/netns.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import { createLan, LAN, runPxeClient, startOnLan, testMac, type ProxyLan } from './scripted.ts';

const maybe = isRoot ? test.serial : test.skip;
const POOL = { start: '10.77.0.100', end: '10.77.0.150' };

let lan: ProxyLan;
let app: Awaited<ReturnType<typeof startOnLan>>;
let scratch: string;
let dnsmasqLog = '';

function inPool(ip: string): boolean {
  const last = Number(ip.split('.')[3]);
  return ip.startsWith(`${LAN.prefix}.`) && last >= 100 && last <= 150;
}

if (isRoot) {
  test.before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'bca-dnsmasq-'));
    lan = await createLan({ clients: 2, site: true });
    const conf = path.join(scratch, 'dnsmasq.conf');
    await writeFile(
      conf,
      ['interface=eth0', 'bind-interfaces', `dhcp-range=${POOL.start},${POOL.end},255.255.255.0,10m`, `dhcp-leasefile=${path.join(scratch, 'leases')}`, 'no-ping', 'log-dhcp', 'user=root', ''].join(
        '\n',
      ),
    );
    const child = lan.site!.spawn('dnsmasq', ['-k', `--conf-file=${conf}`, '--port=0', '--log-facility=-', `--pid-file=${path.join(scratch, 'pid')}`]);
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (dnsmasqLog += s));
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (dnsmasqLog += s));
    await waitFor('dnsmasq to start', () => /DHCP, IP range/.test(dnsmasqLog), 10_000);
    app = await startOnLan(lan.srv);
    await app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('pxe-bootserver: listening'));
  });
  test.after.always(async () => {
    await app?.stop();
    await lan?.destroy();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });
}

maybe('udhcpc (not PXE) gets its lease from dnsmasq and nothing from us (needs root)', async (t) => {
  const c = lan.clients[1]!;
  const script = path.join(scratch, 'udhcpc.sh');
  await writeFile(script, '#!/bin/sh\nif [ "$1" = bound ]; then ip addr add "$ip/$mask" dev "$interface"; echo "BOUND ip=$ip serverid=$serverid siaddr=$siaddr boot_file=$boot_file"; fi\nexit 0\n');
  await chmod(script, 0o755);
  const out = await c.exec('busybox', ['udhcpc', '-i', 'eth0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script]);
  const m = /BOUND ip=(\S+) serverid=(\S+) siaddr=(\S*) boot_file=(\S*)/.exec(out);
  t.truthy(m, out);
  t.true(inPool(m![1]!), `address ${m![1]} from dnsmasq's pool`);
  t.is(m![2], LAN.site, 'leased by the site server');
  t.is(m![4], '', 'no boot file for a non-PXE client');
  t.regex(await c.ip('-4', 'addr', 'show', 'eth0'), new RegExp(m![1]!.replaceAll('.', '\\.')));
  const mac = (await c.exec('cat', ['/sys/class/net/eth0/address'])).trim();
  t.false(
    app.lines.some((l) => l.mac === mac && typeof l.reply === 'string'),
    'the appliance sent it nothing',
  );
});

for (const kind of ['uefi7', 'bios'] as const) {
  maybe(`PXE client (${kind}): address from dnsmasq, boot file from us, REQUEST left to dnsmasq, then 4011 (needs root)`, async (t) => {
    const c = lan.clients[0]!;
    const mac = testMac();
    const xid = kind === 'uefi7' ? 0x7e570001 : 0x7e570101;
    const offers = await runPxeClient(c, { kind, mac, xid, type: MessageType.DISCOVER, iface: 'eth0', waitMs: 4000, maxReplies: 2 });
    t.is(offers.length, 2, 'one offer from each server');
    const site = offers.find((r) => r.from.address === LAN.site);
    const ours = offers.find((r) => r.from.address === LAN.server);
    t.truthy(site, 'dnsmasq offered');
    t.truthy(ours, 'we offered');
    t.true(inPool(site!.packet.yiaddr), 'the address comes from dnsmasq');
    t.is(site!.packet.options.get(Opt.VENDOR_CLASS), undefined, 'dnsmasq is PXE-unaware here');
    t.is(ours!.packet.yiaddr, '0.0.0.0', 'we hand no address');
    t.is(ours!.packet.options.messageType(), MessageType.OFFER);
    t.is(ours!.packet.options.vendorClass(), 'PXEClient');
    t.is(ours!.packet.file, kind === 'bios' ? 'undionly.kpxe' : 'ipxe.efi');
    t.is(ours!.packet.siaddr, LAN.server);
    if (kind === 'bios') t.deepEqual(ours!.packet.options.get(Opt.VENDOR_SPECIFIC), Buffer.from('060108ff', 'hex'));
    else t.false(ours!.packet.options.has(Opt.VENDOR_SPECIFIC));

    // The client takes dnsmasq's address: its REQUEST names dnsmasq; only dnsmasq answers.
    const addr = site!.packet.yiaddr;
    const acks = await runPxeClient(c, { kind, mac, xid: xid + 1, type: MessageType.REQUEST, serverId: LAN.site, requestedIp: addr, iface: 'eth0', waitMs: 2500 });
    t.is(acks.length, 1, 'exactly one ACK');
    t.is(acks[0]!.from.address, LAN.site);
    t.is(acks[0]!.packet.options.messageType(), MessageType.ACK);
    t.is(acks[0]!.packet.yiaddr, addr);
    await waitFor('dnsmasq to log the ACK', () => dnsmasqLog.includes(`DHCPACK(eth0) ${addr} ${mac}`), 5000);

    if (kind === 'uefi7') {
      // OVMF now has dnsmasq's address and asks us on 4011 from its own port 4011.
      await c.ip('addr', 'add', `${addr}/24`, 'dev', 'eth0');
      t.teardown(() => c.ip('addr', 'del', `${addr}/24`, 'dev', 'eth0').then(() => undefined));
      const boot = await runPxeClient(c, {
        kind,
        mac,
        xid: xid + 2,
        type: MessageType.REQUEST,
        ciaddr: addr,
        to: { address: LAN.server, port: 4011 },
        fromPort: 4011,
        iface: 'eth0',
        waitMs: 3000,
        maxReplies: 1,
      });
      t.is(boot.length, 1);
      t.is(boot[0]!.from.address, LAN.server);
      t.is(boot[0]!.packet.options.messageType(), MessageType.ACK);
      t.is(boot[0]!.packet.ciaddr, addr);
      t.is(boot[0]!.packet.file, 'ipxe.efi');
      t.false(boot[0]!.packet.options.has(Opt.VENDOR_SPECIFIC));
      const line = await app.waitForLog((l) => l.mac === mac && l.port === 4011 && l.reply === 'ACK');
      t.is(line.to, `${addr}:4011`);
    }
  });
}
