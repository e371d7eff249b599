/**
 * The networks full DHCP hands addresses on, each with its pool and the options its hosts
 * need. A request is served from the subnet of its link (giaddr, or 82.5 when a relay sends
 * it, or our own segment); the policy (full-policy.ts) asks a SubnetDirectory for it: the
 * --iface segment with its --dhcp-range pool first, then the subnets declared in
 * <data>/dhcp/subnets (site.ts), each with its own pool and lease file.
 */
import { broadcastOf, intToIpv4, ipv4ToInt } from '../net/ipv4.ts';
import type { SharedLedger } from './lease-ledger.ts';
import type { LeasePool } from './leases.ts';

/** One network we hand addresses on. */
export interface ServedSubnet {
  /** `iface` for the --iface segment. */
  name: string;
  /** Network address and mask as integers: membership is one AND per request. */
  network: number;
  mask: number;
  netmask: string;
  /** Option 28. */
  broadcast: string;
  /** Undefined for a declared subnet without a range: only its fixed hosts get addresses. */
  pool: LeasePool | undefined;
  router: string | undefined;
  dns: string[];
  /** Seconds. */
  leaseTime: number;
  /** The pool's lease file, for the log lines about writing it. */
  leaseFile: string;
  /** Resolves once every change of this subnet's pool made before the call is on disk. */
  commit(): Promise<void>;
  /** Set when other appliances hand out this pool too (etcd): offers and bindings are claimed before they are sent. */
  shared?: SharedLedger | undefined;
}

/** What the full DHCP policy asks, per request; answered from memory. */
export interface SubnetDirectory {
  /** The subnet whose network holds `link`; undefined when none does. */
  subnetFor(link: string): ServedSubnet | undefined;
}

export function contains(subnet: Pick<ServedSubnet, 'network' | 'mask'>, ip: string): boolean {
  return (ipv4ToInt(ip) & subnet.mask) >>> 0 === subnet.network;
}

export type SubnetShape = Omit<ServedSubnet, 'network' | 'mask' | 'broadcast'> & {
  /** Any address of the network (ours, on the segment). */
  address: string;
};

export function servedSubnet(shape: SubnetShape): ServedSubnet {
  const mask = ipv4ToInt(shape.netmask);
  const network = (ipv4ToInt(shape.address) & mask) >>> 0;
  return {
    name: shape.name,
    network,
    mask,
    netmask: shape.netmask,
    broadcast: broadcastOf(intToIpv4(network), shape.netmask),
    pool: shape.pool,
    router: shape.router,
    dns: shape.dns,
    leaseTime: shape.leaseTime,
    leaseFile: shape.leaseFile,
    commit: shape.commit,
    shared: shape.shared,
  };
}

/** A directory of one subnet. */
export function singleSubnet(subnet: ServedSubnet): SubnetDirectory {
  return { subnetFor: (link) => (contains(subnet, link) ? subnet : undefined) };
}

/** Our own segment first (the hot path: one AND), then the others (the declared subnets). */
export function ownThenOthers(own: ServedSubnet, others: SubnetDirectory): SubnetDirectory {
  return { subnetFor: (link) => (contains(own, link) ? own : others.subnetFor(link)) };
}
