/**
 * Full DHCP mode against real clients nobody here wrote (busybox udhcpc, ISC dhclient) and
 * scripted PXE/iPXE clients, all in namespaces this test creates (scripted.ts createLan):
 * the appliance on the server namespace's eth0, clients on a bridge beside it.
 */
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, waitFor, type Namespace } from '../helpers/netns.ts';
import { PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { IpxeSubOpt, MessageType, Opt } from '../../src/dhcp/options.ts';
import { createLan, LAN, runPxeClient, testMac, type ProxyLan } from './scripted.ts';
import type { ClientKind } from './fixtures.ts';
import { onLines } from '../helpers/lines.ts';

const maybe = isRoot ? test.serial : test.skip;
const RANGE = `${LAN.prefix}.100,${LAN.prefix}.120`;
const FIRST = `${LAN.prefix}.100`;

interface Ctx {
  lan: ProxyLan;
  dir: string;
  leaseFile: string;
  app: RunningAppliance;
  start(): Promise<RunningAppliance>;
}

async function setup(t: { teardown(fn: () => Promise<void> | void): void }, clients = 1): Promise<Ctx> {
  const lan = await createLan({ clients });
  t.teardown(() => lan.destroy());
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-fullc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const leaseFile = path.join(dir, 'state', 'leases.json');
  const ctx: Ctx = {
    lan,
    dir,
    leaseFile,
    app: undefined as unknown as RunningAppliance,
    async start() {
      ctx.app = await startAppliance(
        [
          '--iface',
          'eth0',
          '--address',
          `${LAN.server}:8080`,
          '--data-path',
          dir,
          '--firmware-path',
          path.join(PROJECT_ROOT, 'firmware'),
          // TFTP on eth0:69 (the default with --iface): DHCP hands out TFTP files only when TFTP serves them there.
          '--dhcp',
          'full',
          '--dhcp-range',
          RANGE,
          '--dhcp-router',
          `${LAN.prefix}.254`,
          '--dhcp-dns',
          `${LAN.prefix}.53`,
          '--lease-time',
          '600',
        ],
        { ns: lan.srv },
      );
      return ctx.app;
    },
  };
  await ctx.start();
  t.teardown(async () => {
    await ctx.app.stop();
  });
  return ctx;
}

/** A long-running client whose script prints `EVENT <name> k=v …` lines; waits on them. */
class ScriptedClient {
  readonly lines: string[] = [];
  constructor(readonly child: ChildProcess) {
    // One buffer for both streams, as the script interleaves them.
    const feed = onLines((line) => this.lines.push(line));
    child.stdout!.setEncoding('utf8').on('data', feed);
    child.stderr!.setEncoding('utf8').on('data', feed);
  }
  /** The k=v fields of the `n`th (0-based) EVENT line named `name`. */
  async event(name: string, n = 0, timeoutMs = 20_000): Promise<Record<string, string>> {
    const line = await waitFor(`${name} event #${n}`, () => this.lines.filter((l) => l.startsWith(`EVENT ${name} `))[n], timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\nclient output:\n${this.lines.join('\n')}`);
    });
    return Object.fromEntries(
      line
        .split(' ')
        .slice(2)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
  }
  async line(re: RegExp, timeoutMs = 20_000): Promise<string> {
    return waitFor(`a line matching ${re}`, () => this.lines.find((l) => re.test(l)), timeoutMs);
  }
  signal(sig: NodeJS.Signals) {
    this.child.kill(sig);
  }
}

const UDHCPC_SCRIPT = `#!/bin/sh
echo "EVENT $1 ip=$ip mask=$mask subnet=$subnet router=$router dns=$dns serverid=$serverid lease=$lease siaddr=$siaddr boot_file=$boot_file"
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`;

const DHCLIENT_SCRIPT = `#!/bin/sh
echo "EVENT $reason ip=$new_ip_address mask=$new_subnet_mask routers=$new_routers dns=$new_domain_name_servers sid=$new_dhcp_server_identifier lease=$new_dhcp_lease_time old=$old_ip_address"
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  EXPIRE|FAIL|RELEASE|STOP) ip addr flush dev "$interface" ;;
esac
exit 0
`;

async function script(dir: string, name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  await chmod(file, 0o755);
  return file;
}

function udhcpc(ns: Namespace, scriptFile: string, extra: string[] = []): ScriptedClient {
  return new ScriptedClient(ns.spawn('busybox', ['udhcpc', '-f', '-i', 'eth0', '-s', scriptFile, '-t', '10', '-T', '1', '-A', '1', ...extra]));
}

function dhclient(ns: Namespace, dir: string, scriptFile: string): ScriptedClient {
  return new ScriptedClient(ns.spawn('dhclient', ['-1', '-d', '-v', '-sf', scriptFile, '-lf', path.join(dir, 'dhclient.leases'), '-pf', path.join(dir, 'dhclient.pid'), 'eth0']));
}

async function stopClient(c: ScriptedClient): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise((r) => c.child.once('exit', r));
  c.signal('SIGKILL'); // by PID (ip netns exec execs the client in place)
  await exited;
}

async function leaseFileState(ctx: Ctx): Promise<string> {
  const snap = await readFile(ctx.leaseFile, 'utf8').catch(() => '');
  const journal = await readFile(`${ctx.leaseFile}.journal`, 'utf8').catch(() => '');
  return snap + journal;
}

maybe('udhcpc (needs root): lease with router, DNS and mask; renew; release; the same address back', async (t) => {
  t.timeout(90_000);
  const ctx = await setup(t);
  const s = await script(ctx.dir, 'udhcpc.sh', UDHCPC_SCRIPT);
  const c = udhcpc(ctx.lan.clients[0]!, s);
  t.teardown(() => stopClient(c));
  const bound = await c.event('bound');
  t.is(bound.ip, FIRST);
  t.is(bound.serverid, LAN.server);
  t.is(bound.router, `${LAN.prefix}.254`);
  t.is(bound.dns, `${LAN.prefix}.53`);
  t.is(bound.subnet, '255.255.255.0');
  t.is(bound.lease, '600');
  t.is(bound.boot_file, '', 'no option 93: an address, no boot file');
  t.regex(await leaseFileState(ctx), new RegExp(`"ip":"${FIRST.replaceAll('.', '\\.')}"[^\\n]*"state":"bound"`), 'on disk before the ACK');

  c.signal('SIGUSR1'); // renew: unicast REQUEST with ciaddr
  const renewed = await c.event('renew');
  t.is(renewed.ip, FIRST);
  await ctx.app.waitForLog((l) => l.msg === 'DHCP ACK' && l.state === 'renewing');

  c.signal('SIGUSR2'); // release
  await ctx.app.waitForLog((l) => l.msg === 'lease released' && l.ip === FIRST);
  c.signal('SIGUSR1'); // and back from released: DISCOVER again
  const again = await c.event('bound', 1);
  t.is(again.ip, FIRST, 'a returning client gets its released address back');
});

maybe('dhclient (needs root): lease; appliance killed -9 and restarted keeps it (INIT-REBOOT ACKed, others get another address); release', async (t) => {
  t.timeout(120_000);
  const ctx = await setup(t, 2);
  const s = await script(ctx.dir, 'dhclient.sh', DHCLIENT_SCRIPT);
  const c1 = dhclient(ctx.lan.clients[0]!, ctx.dir, s);
  const bound = await c1.event('BOUND');
  t.is(bound.ip, FIRST);
  t.is(bound.sid, LAN.server);
  t.is(bound.routers, `${LAN.prefix}.254`);
  t.is(bound.mask, '255.255.255.0');
  await c1.line(/^bound to /); // dhclient writes its lease file after the script ran
  await stopClient(c1);

  // Crash the appliance: no chance to write anything on the way out.
  const exited = new Promise((r) => ctx.app.child.once('exit', r));
  ctx.app.child.kill('SIGKILL');
  await exited;
  await ctx.start();
  await ctx.app.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('leases loaded: 1 active'));

  // Another machine first: it must not get the address the first one holds.
  const u = udhcpc(ctx.lan.clients[1]!, await script(ctx.dir, 'udhcpc.sh', UDHCPC_SCRIPT), ['-q']);
  t.teardown(() => stopClient(u));
  const other = await u.event('bound');
  t.not(other.ip, FIRST);

  // The first machine reboots with its lease file: INIT-REBOOT (REQUEST with 50, no 54).
  const c2 = dhclient(ctx.lan.clients[0]!, ctx.dir, s);
  t.teardown(() => stopClient(c2));
  const reboot = await c2.event('REBOOT');
  t.is(reboot.ip, FIRST, 'same address after the restart');
  await ctx.app.waitForLog((l) => l.msg === 'DHCP ACK' && l.state === 'init-reboot');
  await stopClient(c2);

  const rel = new ScriptedClient(ctx.lan.clients[0]!.spawn('dhclient', ['-r', '-v', '-sf', s, '-lf', path.join(ctx.dir, 'dhclient.leases'), '-pf', path.join(ctx.dir, 'dhclient.pid'), 'eth0']));
  await new Promise((r) => rel.child.once('exit', r));
  await ctx.app.waitForLog((l) => l.msg === 'lease released' && l.ip === FIRST);
  t.pass();
});

maybe('decline (needs root): udhcpc -a finds the offered address taken (ARP), declines; quarantined, it gets the next one', async (t) => {
  t.timeout(90_000);
  const ctx = await setup(t);
  // A host squatting on the first pool address, unknown to the server.
  const sq = await ctx.lan.topo.namespace('sq');
  await ctx.lan.topo.veth(sq, 'eth0', ctx.lan.sw, 'p-sq', `${FIRST}/${LAN.cidr}`);
  await ctx.lan.topo.enslave(ctx.lan.sw, 'p-sq', 'br0');
  const c = udhcpc(ctx.lan.clients[0]!, await script(ctx.dir, 'udhcpc.sh', UDHCPC_SCRIPT), ['-a']);
  t.teardown(() => stopClient(c));
  const bound = await c.event('bound', 0, 40_000);
  await ctx.app.waitForLog((l) => l.ip === FIRST && l.quarantined === true);
  t.not(bound.ip, FIRST);
  t.regex(await leaseFileState(ctx), new RegExp(`"ip":"${FIRST.replaceAll('.', '\\.')}"[^\\n]*"state":"declined"`));
});

const pxeRows: [ClientKind, (file: string | undefined, vendorClass: string | undefined, ipxe176: number | undefined) => boolean, string][] = [
  ['bios', (f, vc) => f === 'undionly.kpxe' && vc === undefined, 'undionly.kpxe, no option 60'],
  ['uefi7', (f, vc) => f === 'ipxe.efi' && vc === undefined, 'ipxe.efi, no option 60 (OVMF 4011 trap)'],
  ['ipxe-bios', (f, _vc, n) => f === `http://${LAN.server}:8080/boot.ipxe` && n === 1, 'the boot script URL and 175.176 = 1'],
  ['ipxe-efi', (f, _vc, n) => f === `http://${LAN.server}:8080/boot.ipxe` && n === 1, 'the boot script URL and 175.176 = 1'],
  ['httpboot16', (f, vc) => f === `http://${LAN.server}:8080/firmware/ipxe.efi` && vc === 'HTTPClient', 'an http:// URL and option 60 HTTPClient'],
];

maybe('scripted PXE and iPXE clients (needs root): full DORA gives yiaddr + siaddr + the boot file for their kind', async (t) => {
  t.timeout(90_000);
  const ctx = await setup(t);
  const ns = ctx.lan.clients[0]!;
  const seen = new Set<string>();
  for (const [kind, ok, what] of pxeRows) {
    const mac = testMac();
    const offers = await runPxeClient(ns, { kind, mac, xid: 0x5000 + seen.size, type: MessageType.DISCOVER, iface: 'eth0', maxReplies: 1, waitMs: 3000 });
    t.is(offers.length, 1, `${kind}: one OFFER`);
    const offer = offers[0]!.packet;
    t.is(offer.options.messageType(), MessageType.OFFER, kind);
    t.false(seen.has(offer.yiaddr), `${kind}: an address of its own`);
    seen.add(offer.yiaddr);
    const acks = await runPxeClient(ns, { kind, mac, xid: 0x6000 + seen.size, type: MessageType.REQUEST, serverId: LAN.server, requestedIp: offer.yiaddr, iface: 'eth0', maxReplies: 1, waitMs: 3000 });
    t.is(acks.length, 1, `${kind}: one ACK`);
    for (const [name, p] of [
      ['OFFER', offer],
      ['ACK', acks[0]!.packet],
    ] as const) {
      t.is(p.yiaddr, offer.yiaddr, `${kind} ${name} yiaddr`);
      t.is(p.siaddr, LAN.server, `${kind} ${name} siaddr`);
      t.is(p.options.serverId(), LAN.server);
      t.false(p.options.has(Opt.VENDOR_SPECIFIC), `${kind} ${name}: no option 43 in full mode`);
      const file = p.options.bootfileName();
      t.is(p.file, file ?? '', `${kind} ${name}: BOOTP file = option 67`);
      t.true(ok(file, p.options.vendorClass(), p.options.ipxeOptions()?.get(IpxeSubOpt.NO_PXEDHCP)?.[0]), `${kind} ${name}: ${what}; got file=${file} 60=${p.options.vendorClass()}`);
    }
    t.is(acks[0]!.packet.options.messageType(), MessageType.ACK);
  }
});
