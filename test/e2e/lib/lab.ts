/**
 * One isolated lab network per test: a namespace "srv" with a bridge (the boot server's
 * segment) that VM taps join, and, for ProxyDHCP scenarios, a second namespace "site" wired to
 * the same bridge where the site's own, PXE-unaware DHCP server runs. Nothing leaves these
 * namespaces; destroy() removes them and ends every process started in them, by PID.
 */
import { exitCleanlyOnSignals, Topology, type Namespace } from '../../helpers/netns.ts';

export const LAB = {
  bridge: 'br0',
  /** The boot server's address (the appliance, or the dnsmasq+nginx reference). */
  server: '10.77.0.1',
  /** The site's DHCP server in proxy scenarios. */
  site: '10.77.0.2',
  prefix: 24,
  netmask: '255.255.255.0',
  range: { start: '10.77.0.100', end: '10.77.0.199' },
  httpPort: 8080,
} as const;

export interface Lab {
  topo: Topology;
  /** Namespace of the boot server and of the bridge the VMs join. */
  srv: Namespace;
  /** Namespace of the site's DHCP server (proxy scenarios only). */
  site: Namespace | undefined;
  /** A new tap on the bridge, for one VM. */
  tap(): Promise<string>;
  destroy(): Promise<void>;
}

export async function createLab(opts: { withSite?: boolean } = {}): Promise<Lab> {
  exitCleanlyOnSignals();
  const topo = new Topology();
  try {
    const srv = await topo.namespace('srv');
    await topo.bridge(srv, LAB.bridge, `${LAB.server}/${LAB.prefix}`);
    let site: Namespace | undefined;
    if (opts.withSite) {
      site = await topo.namespace('site');
      await topo.veth(site, 'eth0', srv, 'site0', `${LAB.site}/${LAB.prefix}`);
      await topo.enslave(srv, 'site0', LAB.bridge);
    }
    let taps = 0;
    return {
      topo,
      srv,
      site,
      async tap() {
        const name = `tap${taps++}`;
        await topo.tap(srv, name, LAB.bridge);
        return name;
      },
      destroy: () => topo.destroy(),
    };
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}
