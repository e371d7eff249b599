import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { z } from 'zod';
import { intToIpv4 } from './ipv4.ts';
import { parseMac, type Mac } from './mac.ts';

export interface InterfaceInfo {
  name: string;
  address: string;
  netmask: string;
  mac: Mac | undefined;
  /** Whether the link is up with a carrier right now; a down one keeps its address and is served once it comes up. */
  up: boolean;
}

/** The network DHCP and TFTP serve: --iface and its IPv4. */
export interface Segment {
  iface: string;
  /** Our IPv4 on it: option 54, siaddr, the URLs clients are sent to. */
  address: string;
  netmask: string;
}

export class InterfaceError extends Error {}

/** What one look at an interface finds; undefined address when it has no IPv4. */
export interface LinkState {
  /** The kernel's operstate: up, down, dormant, unknown (loopback, some tunnels), … */
  operstate: string;
  /** Whether a cable (or a bridge port, or a veth peer) is there; undefined when the kernel cannot say. */
  carrier: boolean | undefined;
  address: string | undefined;
  netmask: string | undefined;
}

function validName(name: string): boolean {
  return /^[^/\0\s]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

function sysfs(name: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
  } catch {
    // `carrier` cannot be read while the interface is administratively down (EINVAL).
    return undefined;
  }
}

function prefixToMask(prefix: number): string {
  return intToIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** `ip -j -4 addr show dev NAME`, as much of it as is read (validated: it is another program's output). */
const IpAddrJson = z.array(z.object({ addr_info: z.array(z.object({ local: z.string(), prefixlen: z.number().int().min(0).max(32) })).default([]) }));

/**
 * The IPv4 of an interface whether it is up or not. Node lists only interfaces that are up and
 * running, but a bridge without ports or a NIC without a cable keeps its address, and is the
 * one to serve once a port comes up; iproute2 (a dependency of the appliance) reports it.
 */
function ipv4Of(name: string): { address: string; netmask: string } | undefined {
  const v4 = networkInterfaces()[name]?.find((e) => e.family === 'IPv4');
  if (v4) return { address: v4.address, netmask: v4.netmask };
  let out: string;
  try {
    out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  } catch {
    return undefined;
  }
  const parsed = IpAddrJson.safeParse(JSON.parse(out || '[]'));
  const first = parsed.success ? parsed.data[0]?.addr_info[0] : undefined;
  return first ? { address: first.local, netmask: prefixToMask(first.prefixlen) } : undefined;
}

/** The interface's link and IPv4 right now; undefined when it does not exist. */
export function readLink(name: string): LinkState | undefined {
  if (!validName(name) || !existsSync(`/sys/class/net/${name}`)) return undefined;
  const carrier = sysfs(name, 'carrier');
  const v4 = ipv4Of(name);
  return { operstate: sysfs(name, 'operstate') ?? 'unknown', carrier: carrier === undefined ? undefined : carrier === '1', address: v4?.address, netmask: v4?.netmask };
}

/** Whether frames can flow: up with a carrier (loopback and some virtual links say "unknown" and work). */
export function linkIsUp(state: LinkState): boolean {
  return (state.operstate === 'up' || state.operstate === 'unknown') && state.carrier !== false;
}

/** In words, for log lines: "up", "down (no carrier)", … */
export function describeLink(state: LinkState): string {
  if (linkIsUp(state)) return 'up';
  if (state.carrier === false) return `${state.operstate} (no carrier)`;
  return state.operstate;
}

/**
 * Resolves --iface to its first IPv4 address; the appliance advertises that address to clients.
 * A link that is down (no carrier yet: a bridge whose ports are not up, docker0 with no
 * container) is not an error as long as the address is there: it is served when it comes up.
 */
export function lookupInterface(name: string): InterfaceInfo {
  const state = readLink(name);
  if (!state) {
    const known = Object.keys(networkInterfaces()).join(', ') || 'none';
    throw new InterfaceError(`interface ${name} does not exist (known: ${known})`);
  }
  if (!state.address || !state.netmask) {
    throw new InterfaceError(`interface ${name} has no IPv4 address (link ${describeLink(state)}); give it one (ip addr add ADDR/PREFIX dev ${name})`);
  }
  return { name, address: state.address, netmask: state.netmask, mac: parseMac(sysfs(name, 'address') ?? ''), up: linkIsUp(state) };
}
