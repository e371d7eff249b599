/**
 * The key layout under the --store prefix (docs/scale-out.md describes it for operators):
 *
 *   <prefix>/config/<path>              a file of the data directory, by its path under it
 *                                       (boot/mac/<mac>.json, profiles/<id>.json, …): its bytes
 *   <prefix>/leases/<subnet>/<ip>       full DHCP's leases, one segment's apart from another's
 *   <prefix>/fleet/<name>/<mac>         an appliance's boot events for one machine (with a lease)
 *
 * `<subnet>` is the network and prefix length joined by `-` (`10.0.0.0-24`), so a subnet is one
 * path segment. Every function here only builds or splits strings.
 */

/** The directories of a data directory that live in etcd; dhcp/ and state/ stay with each appliance. */
export const CONFIG_DIRS = ['boot', 'cloud', 'groups', 'profiles', 'ignition', 'generic'] as const;

export function configPrefix(prefix: string): string {
  return `${prefix}/config/`;
}

/** `rel` is `/`-separated, relative to the data directory. */
export function configKey(prefix: string, rel: string): string {
  return `${configPrefix(prefix)}${rel}`;
}

/** The data-directory path a config key stands for, or undefined when the key is not one (outside config/, or a path that climbs out). */
export function relOfConfigKey(prefix: string, key: string): string | undefined {
  const base = configPrefix(prefix);
  if (!key.startsWith(base)) return undefined;
  const rel = key.slice(base.length);
  const parts = rel.split('/');
  if (rel === '' || parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
  if (!(CONFIG_DIRS as readonly string[]).includes(parts[0]!) || parts.length < 2) return undefined;
  return rel;
}

/** `10.0.0.0`, 24 → `10.0.0.0-24`. */
export function subnetSegment(network: string, prefixLength: number): string {
  return `${network}-${prefixLength}`;
}

export function leasesPrefix(prefix: string, subnet: string): string {
  return `${prefix}/leases/${subnet}/`;
}

export function leaseKey(prefix: string, subnet: string, ip: string): string {
  return `${leasesPrefix(prefix, subnet)}${ip}`;
}

export function fleetPrefix(prefix: string, name?: string): string {
  return name === undefined ? `${prefix}/fleet/` : `${prefix}/fleet/${name}/`;
}

export function fleetKey(prefix: string, name: string, mac: string): string {
  return `${fleetPrefix(prefix, name)}${mac}`;
}
