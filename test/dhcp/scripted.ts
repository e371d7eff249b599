/**
 * Shared helpers for namespace DHCP tests (proxy and full mode): a LAN of namespaces on a
 * bridge, the appliance on it, and scripted PXE clients (pxe-client.ts) run in client
 * namespaces. Everything lives in namespaces the Topology creates and destroys.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, type Namespace } from '../helpers/netns.ts';
import { PROJECT_ROOT, startAppliance, type RunningAppliance } from '../helpers/appliance.ts';
import { parsePacket, type DhcpPacket } from '../../src/dhcp/packet.ts';
import type { ClientKind } from './fixtures.ts';

export const CLIENT_SCRIPT = fileURLToPath(new URL('./pxe-client.ts', import.meta.url));

export const LAN = {
  prefix: '10.77.0',
  server: '10.77.0.1',
  /** The site's DHCP server (dnsmasq) when there is one. */
  site: '10.77.0.2',
  cidr: 24,
} as const;

export interface ClientScript {
  kind: ClientKind;
  mac: string;
  xid: number;
  /** DHCP message type to send (1 DISCOVER, 3 REQUEST, 8 INFORM …). */
  type: number;
  /** Where to send: broadcast to 67 by default; the boot server is `<server>` port 4011. */
  to?: { address: string; port: number };
  /** Local port to send from and listen on: 68 (DHCP, and iPXE to 4011) or 4011 (OVMF to the boot server). */
  fromPort?: number;
  /** Interface to tie the socket to (eth0 in the client namespaces built here). */
  iface: string;
  ciaddr?: string;
  giaddr?: string;
  serverId?: string;
  requestedIp?: string;
  /** Options to set on top of the kind's (code → value as hex; an empty string removes the option). */
  options?: Record<number, string>;
  /** The flags field, instead of the kind's (0x8000 = broadcast). */
  flags?: number;
  /** How long to collect replies, ms. */
  waitMs?: number;
  /** Stop early after this many replies. */
  maxReplies?: number;
}

/** What pxe-client.ts prints for each reply. */
export interface SeenReply {
  from: { address: string; port: number };
  length: number;
  hex: string;
}

export interface Reply {
  from: { address: string; port: number };
  bytes: Buffer;
  packet: DhcpPacket;
}

/** Runs one scripted client exchange in `ns`; resolves with every reply to its xid. */
export async function runPxeClient(ns: Namespace, script: ClientScript): Promise<Reply[]> {
  const out = await ns.exec(process.execPath, ['--import', 'tsx', CLIENT_SCRIPT, JSON.stringify(script)]);
  return out
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => {
      const seen = JSON.parse(l) as SeenReply;
      const bytes = Buffer.from(seen.hex, 'hex');
      return { from: seen.from, bytes, packet: parsePacket(bytes) };
    });
}

export interface ProxyLan {
  topo: Topology;
  /** Where the appliance runs; eth0 = LAN.server. */
  srv: Namespace;
  /** The bridge namespace (br0). */
  sw: Namespace;
  /** Client namespaces, eth0 each, no address. */
  clients: Namespace[];
  /** The site's DHCP server namespace (eth0 = LAN.site), when asked for. */
  site: Namespace | undefined;
  destroy(): Promise<void>;
}

/** A bridge with the appliance's namespace, `clients` client namespaces and optionally a site-server namespace. */
export async function createLan(opts: { clients?: number; site?: boolean; extra?: (topo: Topology) => Promise<void> } = {}): Promise<ProxyLan> {
  const topo = new Topology();
  try {
    const sw = await topo.namespace('sw');
    await topo.bridge(sw, 'br0');
    const srv = await topo.namespace('srv');
    await topo.veth(srv, 'eth0', sw, 'p-srv', `${LAN.server}/${LAN.cidr}`);
    await topo.enslave(sw, 'p-srv', 'br0');
    let site: Namespace | undefined;
    if (opts.site) {
      site = await topo.namespace('site');
      await topo.veth(site, 'eth0', sw, 'p-site', `${LAN.site}/${LAN.cidr}`);
      await topo.enslave(sw, 'p-site', 'br0');
    }
    const clients: Namespace[] = [];
    for (let i = 0; i < (opts.clients ?? 1); i++) {
      const c = await topo.namespace(`c${i}`);
      await topo.veth(c, 'eth0', sw, `p-c${i}`);
      await topo.enslave(sw, `p-c${i}`, 'br0');
      clients.push(c);
    }
    await opts.extra?.(topo);
    return { topo, srv, sw, clients, site, destroy: () => topo.destroy() };
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}

/**
 * Starts the appliance in `ns` with a throwaway data dir holding a default boot config (in
 * ProxyDHCP mode only machines with a config are answered) and the project's firmware, TFTP on
 * eth0:69 (DHCP hands out TFTP files only when TFTP serves them there).
 */
export async function startOnLan(ns: Namespace, args: string[] = []): Promise<RunningAppliance & { dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bca-dhcp-'));
  await mkdir(path.join(dataDir, 'boot'), { recursive: true });
  await writeFile(path.join(dataDir, 'boot', 'default.json'), JSON.stringify({ kernel: '/images/vmlinuz' }));
  try {
    const app = await startAppliance(['--iface', 'eth0', '--address', `${LAN.server}:8080`, '--data-path', dataDir, '--firmware-path', path.join(PROJECT_ROOT, 'firmware'), ...args], { ns });
    const stop = app.stop.bind(app);
    return Object.assign(app, {
      dataDir,
      stop: async () => {
        const code = await stop();
        await rm(dataDir, { recursive: true, force: true });
        return code;
      },
    });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** Options of a reply as code → hex, for readable deepEqual failures. */
export function optionsHex(p: DhcpPacket): Record<number, string> {
  return Object.fromEntries(p.options.entries().map(([k, v]) => [k, v.toString('hex')]));
}

let macCounter = 0;
/** A locally administered MAC unique within this process run. */
export function testMac(): string {
  macCounter += 1;
  const r = (process.pid * 31 + macCounter) & 0xffffff;
  return `02:42:${((r >> 16) & 255).toString(16).padStart(2, '0')}:${((r >> 8) & 255).toString(16).padStart(2, '0')}:${(r & 255).toString(16).padStart(2, '0')}:${(macCounter & 255).toString(16).padStart(2, '0')}`;
}
