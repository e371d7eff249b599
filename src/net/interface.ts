import { existsSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseMac, type Mac } from './mac.ts';

export interface InterfaceInfo {
  name: string;
  address: string;
  netmask: string;
  mac: Mac | undefined;
}

/** The network DHCP and TFTP serve: --iface and its IPv4. */
export interface Segment {
  iface: string;
  /** Our IPv4 on it: option 54, siaddr, the URLs clients are sent to. */
  address: string;
  netmask: string;
}

export class InterfaceError extends Error {}

/** Resolves --iface to its first IPv4 address; the appliance advertises that address to clients. */
export function lookupInterface(name: string): InterfaceInfo {
  const all = networkInterfaces();
  const entries = all[name];
  if (!entries) {
    const known = Object.keys(all).join(', ') || 'none';
    // Node lists only interfaces that are up and running: one that exists but is down or
    // has no carrier (cable out, peer down) must not be reported as missing.
    if (/^[^/\0]{1,15}$/.test(name) && name !== '.' && name !== '..' && existsSync(`/sys/class/net/${name}`)) {
      throw new InterfaceError(`interface ${name} exists but is down or has no carrier (interfaces up: ${known}); bring it up, or start after the network is online`);
    }
    throw new InterfaceError(`interface ${name} does not exist (known: ${known})`);
  }
  const v4 = entries.find((e) => e.family === 'IPv4');
  if (!v4) throw new InterfaceError(`interface ${name} has no IPv4 address`);
  return { name, address: v4.address, netmask: v4.netmask, mac: parseMac(v4.mac) };
}
