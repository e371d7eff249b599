/**
 * Full DHCP for real sites, over real sockets in namespaces this test creates (needs root):
 * two relayed subnets declared in <data>/dhcp/subnets, each served from its own pool with its
 * own router, DNS and lease time and its own lease file; fixed addresses by MAC from
 * <data>/dhcp/hosts, through a scripted relay and through busybox udhcpc on the segment
 * (with option 12); a reserved address never offered to another MAC; a hosts file changed
 * while running; a second appliance on the same lease file refused.
 *
 * The LAN (scripted.ts): the appliance on 10.77.0.1 (--iface eth0, pool .100-.120); c0 is a
 * relay agent (10.77.0.9 on the LAN, giaddr 10.88.0.1 and 10.89.0.1 for the two relayed
 * subnets, routed from the server through it); c1 is a machine on the segment.
 */
import test from 'ava';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isRoot, waitFor } from '../helpers/netns.ts';
import { cliArgs, PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { onLines } from '../helpers/lines.ts';
import { MessageType, Opt } from '../../src/dhcp/options.ts';
import type { DhcpPacket } from '../../src/dhcp/packet.ts';
import { createLan, LAN, runPxeClient, testMac, type ClientScript, type ProxyLan, type Reply } from './scripted.ts';

const maybe = isRoot ? test.serial : test.skip;
const RELAY_LAN = '10.77.0.9';
const SUBNETS = {
  a: { giaddr: '10.88.0.1', file: { subnet: '10.88.0.0/24', range: ['10.88.0.100', '10.88.0.110'], router: '10.88.0.1', dns: ['10.88.0.53'], leaseTime: 900 } },
  b: { giaddr: '10.89.0.1', file: { subnet: '10.89.0.0/24', range: ['10.89.0.200', '10.89.0.210'], router: '10.89.0.1', dns: ['10.89.0.53', '10.89.0.54'], leaseTime: 1200 } },
} as const;
/** Fixed in subnet a, on the first address of its range: the pool must skip it. */
const RESERVED_MAC = '02:bc:a0:00:00:01';
const RESERVED_IP = '10.88.0.100';
/** Fixed on the --iface segment, for the real client. */
const NODE_MAC = '02:bc:a0:00:00:02';

let lan: ProxyLan;
let dir: string;
let app: RunningAppliance;

async function writeJson(rel: string, value: unknown): Promise<void> {
  const file = path.join(dir, rel);
  await mkdir(path.dirname(file), { recursive: true });
  // Written aside and renamed, as an editor or config management does: the watcher never sees half a file.
  await writeFile(`${file}.tmp`, JSON.stringify(value));
  await rename(`${file}.tmp`, file);
}

const APP_ARGS = () => [
  '--iface',
  'eth0',
  '--data-path',
  dir,
  '--firmware-path',
  path.join(PROJECT_ROOT, 'firmware'),
  '--dhcp',
  'full',
  '--dhcp-range',
  `${LAN.prefix}.100,${LAN.prefix}.120`,
  '--dhcp-router',
  `${LAN.prefix}.254`,
  '--dhcp-dns',
  `${LAN.prefix}.53`,
  '--lease-time',
  '600',
];

if (isRoot) {
  test.before(async () => {
    lan = await createLan({ clients: 2 });
    const relay = lan.clients[0]!;
    await relay.ip('addr', 'add', `${RELAY_LAN}/24`, 'dev', 'eth0');
    for (const s of Object.values(SUBNETS)) {
      await relay.ip('addr', 'add', `${s.giaddr}/24`, 'dev', 'eth0');
      await lan.srv.ip('route', 'add', s.file.subnet, 'via', RELAY_LAN);
    }
    dir = await mkdtemp(path.join(tmpdir(), 'bca-site-'));
    await writeJson('boot/default.json', { kernel: '/images/vmlinuz' });
    await writeJson('dhcp/subnets/a.json', SUBNETS.a.file);
    await writeJson('dhcp/subnets/b.json', SUBNETS.b.file);
    await writeJson(`dhcp/hosts/${RESERVED_MAC.replaceAll(':', '-')}.json`, { ip: RESERVED_IP, hostname: 'fixed-a' });
    await writeJson(`dhcp/hosts/${NODE_MAC.replaceAll(':', '')}.json`, { ip: `${LAN.prefix}.50`, hostname: 'node1' });
    app = await startAppliance(['--address', `${LAN.server}:8080`, ...APP_ARGS()], { ns: lan.srv });
  });
  test.after.always(async () => {
    await app?.stop();
    await lan?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
}

let xidCounter = 0x5e000000;
const nextXid = () => (xidCounter += 1);

function viaRelay(giaddr: string, script: Omit<ClientScript, 'iface' | 'giaddr' | 'to' | 'fromPort' | 'kind'>): Promise<Reply[]> {
  return runPxeClient(lan.clients[0]!, { waitMs: 3000, maxReplies: 1, kind: 'udhcpc', ...script, iface: 'eth0', giaddr, to: { address: LAN.server, port: 67 }, fromPort: 67 });
}

const ip = (p: DhcpPacket, code: number) => {
  const b = p.options.get(code);
  return b ? Array.from({ length: b.length / 4 }, (_, i) => [...b.subarray(i * 4, i * 4 + 4)].join('.')) : [];
};

/** The lease file as on disk: snapshot plus journal. */
async function leaseText(name: string): Promise<string> {
  const file = path.join(dir, 'state', name);
  return (await readFile(file, 'utf8').catch(() => '')) + (await readFile(`${file}.journal`, 'utf8').catch(() => ''));
}

maybe('two relayed subnets (needs root): each client is served from its own subnet’s pool with its router, DNS and lease time; each subnet’s leases persist in their own file', async (t) => {
  const got: Record<string, { mac: string; ip: string }> = {};
  for (const [name, s] of Object.entries(SUBNETS)) {
    const mac = testMac();
    const offers = await viaRelay(s.giaddr, { mac, xid: nextXid(), type: MessageType.DISCOVER });
    t.is(offers.length, 1, `${name}: one OFFER`);
    const offer = offers[0]!.packet;
    const [start, end] = s.file.range.map((a) => Number(a.split('.')[3]));
    const last = Number(offer.yiaddr.split('.')[3]);
    t.true(offer.yiaddr.startsWith(s.giaddr.slice(0, -1)) && last >= start! && last <= end!, `${name}: ${offer.yiaddr} in ${s.file.range.join('-')}`);
    t.is(offer.giaddr, s.giaddr);
    t.deepEqual(ip(offer, Opt.ROUTER), [s.file.router], `${name}: its router`);
    t.deepEqual(ip(offer, Opt.DNS), [...s.file.dns], `${name}: its DNS`);
    t.deepEqual(ip(offer, Opt.SUBNET_MASK), ['255.255.255.0']);
    t.is(offer.options.leaseTime(), s.file.leaseTime, `${name}: its lease time`);
    const acks = await viaRelay(s.giaddr, { mac, xid: nextXid(), type: MessageType.REQUEST, serverId: LAN.server, requestedIp: offer.yiaddr });
    t.is(acks[0]?.packet.options.messageType(), MessageType.ACK, `${name}: ACK`);
    t.is(acks[0]!.packet.yiaddr, offer.yiaddr);
    t.is(acks[0]!.packet.options.leaseTime(), s.file.leaseTime);
    got[name] = { mac, ip: offer.yiaddr };
  }
  const a = await leaseText('leases-a.json');
  const b = await leaseText('leases-b.json');
  t.true(a.includes(`"ip":"${got.a!.ip}"`) && a.includes(got.a!.mac), 'subnet a’s lease in leases-a.json');
  t.true(b.includes(`"ip":"${got.b!.ip}"`) && b.includes(got.b!.mac), 'subnet b’s lease in leases-b.json');
  t.false(a.includes(got.b!.mac) || b.includes(got.a!.mac), 'leases of different subnets stay apart');
  t.false((await leaseText('leases.json')).includes(got.a!.mac), 'nor in the --iface pool’s file');
});

maybe('reserved address (needs root): the fixed host gets it with its host name; no other MAC is offered it, even asking for it, and a REQUEST for it is NAKed', async (t) => {
  const fixed = await viaRelay(SUBNETS.a.giaddr, { mac: RESERVED_MAC, xid: nextXid(), type: MessageType.DISCOVER });
  t.is(fixed[0]?.packet.yiaddr, RESERVED_IP);
  t.is(fixed[0]!.packet.options.hostname(), 'fixed-a');
  t.deepEqual(ip(fixed[0]!.packet, Opt.ROUTER), [SUBNETS.a.file.router]);
  const ack = await viaRelay(SUBNETS.a.giaddr, { mac: RESERVED_MAC, xid: nextXid(), type: MessageType.REQUEST, serverId: LAN.server, requestedIp: RESERVED_IP });
  t.is(ack[0]?.packet.options.messageType(), MessageType.ACK);
  t.is(ack[0]!.packet.yiaddr, RESERVED_IP);

  for (let i = 0; i < 4; i++) {
    const offers = await viaRelay(SUBNETS.a.giaddr, { mac: testMac(), xid: nextXid(), type: MessageType.DISCOVER, requestedIp: RESERVED_IP });
    t.is(offers.length, 1);
    t.not(offers[0]!.packet.yiaddr, RESERVED_IP, 'another MAC is never offered the reserved address');
  }
  const other = testMac();
  const naks = await viaRelay(SUBNETS.a.giaddr, { mac: other, xid: nextXid(), type: MessageType.REQUEST, requestedIp: RESERVED_IP });
  t.is(naks[0]?.packet.options.messageType(), MessageType.NAK);
  t.regex(naks[0]!.packet.options.get(Opt.MESSAGE)?.toString('latin1') ?? '', /reserved for a fixed host/);
  t.false((await leaseText('leases-a.json')).includes(`"ip":"${RESERVED_IP}"`), 'never in the pool’s file');
});

const UDHCPC_SCRIPT = `#!/bin/sh
echo "EVENT $1 ip=$ip mask=$mask router=$router dns=$dns lease=$lease hostname=$hostname"
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`;

maybe(
  'fixed address by MAC through busybox udhcpc (needs root): its address and host name (12); the hosts file changed while running: the renewal is NAKed and it binds the new address',
  async (t) => {
    t.timeout(90_000);
    const c = lan.clients[1]!;
    await c.ip('link', 'set', 'eth0', 'down');
    await c.ip('link', 'set', 'eth0', 'address', NODE_MAC);
    await c.ip('link', 'set', 'eth0', 'up');
    const scriptFile = path.join(dir, 'udhcpc.sh');
    await writeFile(scriptFile, UDHCPC_SCRIPT);
    await chmod(scriptFile, 0o755);
    const child = c.spawn('busybox', ['udhcpc', '-f', '-i', 'eth0', '-s', scriptFile, '-t', '10', '-T', '1', '-A', '1']);
    const lines: string[] = [];
    const feed = onLines((l) => lines.push(l));
    child.stdout!.setEncoding('utf8').on('data', feed);
    child.stderr!.setEncoding('utf8').on('data', feed);
    t.teardown(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL'); // by PID: ours
      await exited;
    });
    const event = async (name: string, n: number) => {
      const line = await waitFor(`udhcpc ${name} #${n}`, () => lines.filter((l) => l.startsWith(`EVENT ${name} `))[n], 20_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${lines.join('\n')}`);
      });
      return Object.fromEntries(
        line
          .split(' ')
          .slice(2)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
    };
    const bound = await event('bound', 0);
    t.is(bound.ip, `${LAN.prefix}.50`, 'the fixed address, outside the pool');
    t.is(bound.hostname, 'node1');
    t.is(bound.router, `${LAN.prefix}.254`);
    t.is(bound.lease, '600');

    const mark = app.lines.length;
    const after = (l: Record<string, unknown>) => app.lines.indexOf(l) >= mark;
    await writeJson(`dhcp/hosts/${NODE_MAC.replaceAll(':', '')}.json`, { ip: `${LAN.prefix}.51`, hostname: 'node1b' });
    await app.waitForLog((l) => after(l) && typeof l.msg === 'string' && l.msg.startsWith('dhcp site loaded'), 10_000);
    child.kill('SIGUSR1'); // renew: the old address is no longer this host's
    const nak = await app.waitForLog((l) => after(l) && l.reply === 'NAK' && l.mac === NODE_MAC, 15_000);
    t.is(nak.state, 'renewing');
    const again = await event('bound', 1);
    t.is(again.ip, `${LAN.prefix}.51`);
    t.is(again.hostname, 'node1b');
  },
);

maybe('lease file lock (needs root): a second appliance on the same lease file refuses to start, naming the file', async (t) => {
  const child = lan.srv.spawn(process.execPath, cliArgs(['--address', `${LAN.server}:8081`, '--tftp-address', 'off', '--log-format', 'json', ...APP_ARGS()]), {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  t.not(code, 0);
  t.true(out.includes(`lease file ${path.join(dir, 'state', 'leases.json')} is in use by another appliance`), out.slice(-2000));
});
