/**
 * The wiring: the one place that sees the whole AppConfig. It builds the shared parts (log,
 * metrics, timeline, firmware catalog, store), hands each service only the options it
 * uses, and starts the services in order. Flow: cli → config → appliance → services.
 */
import type { BootSettings } from './boot/decide.ts';
import { machineMatch } from './boot/machine.ts';
import type { AppConfig } from './config.ts';
import path from 'node:path';
import { totalLeaseCounts, type LeasePool } from './dhcp/leases.ts';
import type { MachineLookup } from './dhcp/pipeline.ts';
import { dhcpServiceFor, poolFor } from './dhcp/service.ts';
import { DhcpSite } from './dhcp/site.ts';
import { EtcdLeases } from './dhcp/etcd-leases.ts';
import { FleetPublisher } from './events/fleet-publisher.ts';
import { FleetView } from './events/fleet-view.ts';
import type { Etcd3 } from 'etcd3';
import { intToIpv4, ipv4ToInt, networkOf } from './net/ipv4.ts';
import { fleetPrefix, leasesPrefix, subnetSegment } from './store/etcd-keys.ts';
import { BootCounter } from './events/boot-counter.ts';
import { ipxeDiscovers } from './events/ipxe-discovers.ts';
import { StallWatch } from './events/stall-watch.ts';
import { BootTimeline } from './events/timeline.ts';
import { explain, type Explanation } from './explain.ts';
import { FirmwareCatalog, FirmwareTrustError } from './firmware/catalog.ts';
import { createHttpHandler } from './http/app.ts';
import { startBodyWriter } from './http/file-body.ts';
import { HttpService } from './http/service.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import type { Mac } from './net/mac.ts';
import { RaQuenchService } from './net/ra-quench.ts';
import type { Uuid } from './net/uuid.ts';
import { matchboxTemplateProblem } from './render/matchbox.ts';
import type { Service } from './service.ts';
import { DhcpSiteFiles, ownSegment } from './store/dhcp-files.ts';
import { combinedBootStore, type BootLookupStore } from './boot-lookup.ts';
import { connectEtcd, describeEtcdError } from './store/etcd-connection.ts';
import { EtcdStore, type StoreHealth } from './store/etcd-store.ts';
import { FileStore } from './store/file-store.ts';
import { MatchboxStore, matchboxStoreService } from './store/matchbox-store.ts';
import { storeService } from './store/service.ts';
import type { Store } from './store/store.ts';
import { grubFiles } from './tftp/grub-files.ts';
import { TftpService } from './tftp/service.ts';

/** What the services are built from. Only the factories below read it; no service is handed it. */
export interface ApplianceParts {
  config: AppConfig;
  log: Logger;
  metrics: Metrics;
  timeline: BootTimeline;
  /** iPXE builds verified against SHA256SUMS at start; only these are ever handed out. */
  firmware: FirmwareCatalog;
  /** Boot and cloud configs; loaded and watched by the store service (first to start). */
  store: Store;
  /** The matchbox layout of the same --data-path (groups, profiles, templates); loaded and watched by its own service. Optional so parts built by hand need not make one. */
  matchbox?: MatchboxStore | undefined;
  /** The config store's connection (the etcd store only): /healthz says degraded through an outage. */
  storeHealth?: (() => StoreHealth) | undefined;
  /** The boot decision's settings, the same for DHCP, /api/explain and `explain`. */
  boot: BootSettings;
  /** Full DHCP's address pool (the metrics count it at scrape time); undefined in other modes. */
  leasePool: LeasePool | undefined;
  /** Full DHCP's fixed hosts and relayed subnets from <data>/dhcp (watched; started by the DHCP service); undefined in other modes. */
  dhcpSite?: DhcpSite | undefined;
  /** With --store etcd://…: the fleet view and the leases shared with the other appliances; undefined with the file store. */
  shared?: SharedParts | undefined;
}

/** What a shared store (etcd) adds: one client for the fleet view and the leases. */
export interface SharedParts {
  client: Etcd3;
  prefix: string;
  publisher: FleetPublisher;
  view: FleetView;
  /** The etcd ledger of the pool of one subnet (`10.0.0.0-24`). */
  ledgerFor(pool: LeasePool, network: string, prefixLength: number): EtcdLeases;
}

export type ServiceFactory = (parts: ApplianceParts) => Service | undefined;

/** Plain config plus the catalog's verdicts, so the decision stays pure. */
export function bootSettings(config: Pick<AppConfig, 'baseUrl' | 'efiFirmware' | 'uefiLoader' | 'dhcp' | 'advertisedAddress' | 'tftp'>, firmware: FirmwareCatalog): BootSettings {
  return {
    baseUrl: config.baseUrl,
    efiFirmware: config.efiFirmware,
    uefiLoader: config.uefiLoader,
    dhcpMode: config.dhcp.mode,
    tftpServer: config.advertisedAddress,
    tftpPort: config.tftp?.port,
    firmware: { has: (name) => firmware.has(name), explain: (name) => firmware.explain(name) },
  };
}

/** The machine as DHCP looks it up: uuid → mac → default, the keys /ipxe uses. */
/** The boot lookups every service makes: the seed layout and matchbox's groups in one precedence (boot-lookup.ts). */
export function bootStore(parts: Pick<ApplianceParts, 'store' | 'matchbox' | 'config'>): BootLookupStore {
  return combinedBootStore(parts.store, parts.matchbox, parts.config.baseUrl);
}

export function machineLookup(store: Pick<Store, 'boot'>): MachineLookup {
  return (query) => machineMatch(store.boot(query));
}

/** `explain` for one machine, from the running parts. */
export function explainer(
  parts: Pick<ApplianceParts, 'config' | 'store' | 'boot' | 'matchbox'>,
): (machine: { mac: Mac | undefined; uuid: Uuid | undefined; labels?: Record<string, string> | undefined }) => Explanation {
  const store = bootStore(parts);
  return ({ mac, uuid, labels }) =>
    explain({ mac, uuid, labels, store, matchbox: parts.matchbox, settings: parts.boot, dhcpMode: parts.config.dhcp.mode, serverAddress: parts.config.advertisedAddress });
}

/**
 * `kept`: what outlives a restart of the services (a new --iface address, commands/serve.ts):
 * the boot timeline, so the machines page and /api/machines keep every machine's steps.
 */
export async function createParts(config: AppConfig, log: Logger, kept: { timeline?: BootTimeline } = {}): Promise<ApplianceParts> {
  const firmware = await FirmwareCatalog.load(config.firmwarePath, log);
  if (firmware.trust === 'none' && (config.tftp || config.dhcp.mode !== 'off')) {
    throw new FirmwareTrustError(
      `--firmware-path ${firmware.root}: no SHA256SUMS there and no Debian package installed its files, so none of them can be trusted and no machine would get a boot loader. ` +
        `Use the project's folder (bash firmware/fetch.sh; --firmware-path ./firmware), Debian's /usr/lib/ipxe (checked against dpkg's checksums), ` +
        `or list the files you trust: (cd ${firmware.root} && sha256sum undionly.kpxe ipxe.efi > SHA256SUMS)`,
    );
  }
  const { dhcp } = config;
  const leasePool = dhcp.mode === 'full' ? poolFor(dhcp.range, dhcp.segment.address, dhcp.router, dhcp.leaseTime) : undefined;
  let dhcpSite: DhcpSite | undefined;
  const metrics = new Metrics({
    processMetrics: true,
    leaseCounts: leasePool && (() => totalLeaseCounts([leasePool, ...(dhcpSite?.pools() ?? [])])),
    timelineSize: () => timeline.size(),
  });
  const timeline = kept.timeline ?? new BootTimeline();
  timeline.reportEvictionsTo((reason) => metrics.timelineEvictions.inc({ reason }));
  const shared = config.store.kind === 'etcd' ? sharedParts(config.store, { name: config.name, fleetTtl: config.fleetTtl }, log, timeline, metrics) : undefined;
  if (dhcp.mode === 'full') {
    const { segment } = dhcp;
    const source = new DhcpSiteFiles(config.dataPath, { log, metrics, own: ownSegment(segment.iface, segment.address, segment.netmask, dhcp.range) });
    // With a shared store each declared subnet's pool is shared too, under its own network: two segments' leases never meet.
    const ledgerFor = shared && ((pool: LeasePool, decl: { network: number; mask: number }) => shared.ledgerFor(pool, intToIpv4(decl.network), prefixLengthOf(decl.mask)));
    dhcpSite = new DhcpSite({ leaseDir: path.dirname(dhcp.leaseFile), defaultLeaseTime: dhcp.leaseTime, ownPool: leasePool, ledgerFor }, { source, log, timeline });
  }
  const { store, matchbox, storeHealth } = configStores(config, log, metrics);
  return { config, log, metrics, timeline, firmware, store, matchbox, storeHealth, boot: bootSettings(config, firmware), leasePool, dhcpSite, shared };
}

function prefixLengthOf(mask: number): number {
  let n = 0;
  for (let m = mask >>> 0; m; m = (m << 1) >>> 0) n++;
  return n;
}

/** The fleet view's two halves and the shared leases, on a client of their own (the config store keeps its own). */
function sharedParts(store: Extract<AppConfig['store'], { kind: 'etcd' }>, options: { name: string; fleetTtl: number }, log: Logger, timeline: BootTimeline, metrics: Metrics): SharedParts {
  const client = connectEtcd(store);
  const { prefix } = store;
  return {
    client,
    prefix,
    publisher: new FleetPublisher({ name: options.name, ttlSeconds: options.fleetTtl }, { etcd: client.namespace(fleetPrefix(prefix, options.name)), timeline, log }),
    view: new FleetView({ name: options.name }, { etcd: client.namespace(fleetPrefix(prefix)), timeline, log }),
    ledgerFor(pool, network, prefixLength) {
      const where = leasesPrefix(prefix, subnetSegment(network, prefixLength));
      return new EtcdLeases({ where, name: options.name }, { etcd: client, pool, log, onBound: (l) => l.mac && timeline.bindAddress(l.ip, l.mac), writes: metrics.sharedLeaseWrites });
    },
  };
}

/** The configs' stores: the files under --data-path, or etcd (--store) through its local mirror. */
function configStores(config: Pick<AppConfig, 'dataPath' | 'store'>, log: Logger, metrics: Metrics): Pick<ApplianceParts, 'store' | 'matchbox' | 'storeHealth'> {
  const { store } = config;
  if (store.kind === 'file') {
    return { store: new FileStore(config.dataPath, { log, metrics }), matchbox: new MatchboxStore(config.dataPath, { log, metrics, checkTemplate: matchboxTemplateProblem }) };
  }
  const client = connectEtcd(store);
  const etcd = new EtcdStore({
    log,
    metrics,
    client,
    prefix: store.prefix,
    endpoints: store.endpoints,
    mirrorPath: store.mirrorPath,
    checkTemplate: matchboxTemplateProblem,
    describeError: (err) => describeEtcdError(err, store),
  });
  return { store: etcd, matchbox: etcd.matchbox, storeHealth: () => etcd.health() };
}

/** /healthz's line for the store: undefined while it is in step with its source. */
function storeDegraded(health: () => StoreHealth): () => string | undefined {
  return () => {
    const h = health();
    return h.connected ? undefined : `config store unreachable since ${h.since.toISOString()} (${h.reason ?? 'unknown'}); serving the last configs read`;
  };
}

export function createStoreService(parts: ApplianceParts): Service {
  return storeService(parts.store);
}

/** Undefined when the parts carry no matchbox store. */
export function createMatchboxStoreService(parts: ApplianceParts): Service | undefined {
  return parts.matchbox && matchboxStoreService(parts.matchbox);
}

export function createBootCounter({ timeline, metrics, log }: ApplianceParts): Service {
  return new BootCounter({ timeline, metrics, log });
}

export function createStallWatch({ timeline, metrics, log, config }: ApplianceParts): Service {
  return new StallWatch({ timeline, metrics, log }, { rules: { stallAfterMs: config.stallAfterMs }, checkEveryMs: Math.min(5000, config.stallAfterMs / 4) });
}

export function createHttpService(parts: ApplianceParts): HttpService {
  const { config, log, metrics, timeline, firmware } = parts;
  const sendfileProblem = config.httpSendfile
    ? startBodyWriter('sendfile', (err) => log.warn({ err }, `http: the sendfile thread failed (${err.message}); image bodies go through buffers from now on, as with --http-sendfile off`))
    : undefined;
  if (sendfileProblem !== undefined) log.warn({ problem: sendfileProblem }, `http: image bodies go through buffers, as with --http-sendfile off: the sendfile thread cannot run (${sendfileProblem})`);
  const handler = createHttpHandler({
    log,
    metrics,
    timeline,
    store: bootStore(parts),
    firmware,
    imagesPath: config.imagesPath,
    imageBodies: config.httpSendfile ? 'sendfile' : 'buffers',
    baseUrl: config.baseUrl,
    explain: explainer(parts),
    machines: parts.shared?.view,
    api: { rules: { stallAfterMs: config.stallAfterMs } },
    matchbox: parts.matchbox,
    degraded: parts.storeHealth && [storeDegraded(parts.storeHealth)],
  });
  return new HttpService(config.http, handler, log);
}

/** Undefined with --tftp-address off (the default without --iface). */
export function createTftpService(parts: ApplianceParts): Service | undefined {
  const { config } = parts;
  if (!config.tftp) return undefined;
  const { log, metrics, timeline } = parts;
  const generated = grubFiles({ store: bootStore(parts), timeline, log, baseUrl: config.baseUrl });
  return new TftpService(
    {
      listen: config.tftp,
      root: config.firmwarePath,
      images: config.imagesPath,
      generated,
      serverAddress: config.advertisedAddress,
      iface: config.iface,
      catalog: parts.firmware,
      maxTransfersPerClient: config.tftpMaxPerClient,
      engine: config.tftpEngine,
    },
    { log, metrics, timeline },
  );
}

/** Undefined with --dhcp off: the appliance then serves HTTP/TFTP only. */
export function createDhcpService(parts: ApplianceParts): Service | undefined {
  const { dhcp } = parts.config;
  const { boot, log, metrics, timeline } = parts;
  const deps = { boot, log, metrics, timeline, lookup: machineLookup(bootStore(parts)) };
  if (dhcp.mode === 'off') return undefined;
  if (dhcp.mode === 'proxy') return dhcpServiceFor({ mode: 'proxy', segment: dhcp.segment }, deps);
  if (!parts.leasePool) throw new Error('full DHCP without its lease pool (createParts makes it)');
  const { segment } = dhcp;
  // With a shared store the --iface pool's leases live in etcd under the segment's network: no lease file.
  const ledger = parts.shared?.ledgerFor(parts.leasePool, intToIpv4(networkOf(segment.address, segment.netmask)), prefixLengthOf(ipv4ToInt(segment.netmask)));
  return dhcpServiceFor({ mode: 'full', segment, router: dhcp.router, dns: dhcp.dns, leaseTime: dhcp.leaseTime, leaseFile: dhcp.leaseFile, pool: parts.leasePool, site: parts.dhcpSite, ledger }, deps);
}

/** Full mode only (config.ts makes it off elsewhere): auto by default, undefined when --ipv6-ra-quench is off. */
export function createRaQuenchService(parts: ApplianceParts): Service | undefined {
  const { config } = parts;
  if (config.dhcp.mode !== 'full') return undefined;
  const iface = config.dhcp.segment.iface;
  if (config.ipv6RaQuench === 'off') {
    parts.log.info({ iface, mode: 'off' }, `ipv6-ra-quench: off (--ipv6-ra-quench off): iPXE clients on ${iface} wait ~13 s for an IPv6 router unless one advertises there`);
    return undefined;
  }
  return new RaQuenchService({ iface, mode: config.ipv6RaQuench, log: parts.log, metrics: parts.metrics, onIpxeDiscover: ipxeDiscovers(parts.timeline) });
}

/** The order matters: the store loads before anything can ask it, DHCP starts last so no client is sent to a service that is not up yet. */
/** Undefined without a shared store. Before HTTP (the page reads the view) and DHCP (the leases use its client), so stopped after both. */
export function createFleetService({ shared }: ApplianceParts): Service | undefined {
  if (!shared) return undefined;
  const parts: Service[] = [shared.view, shared.publisher];
  return {
    name: 'fleet',
    async start() {
      for (const p of parts) await p.start();
    },
    async stop() {
      for (const p of [...parts].reverse()) await p.stop().catch(() => undefined);
      shared.client.close();
    },
  };
}

export const SERVICE_FACTORIES: ServiceFactory[] = [
  createStoreService,
  createMatchboxStoreService,
  createBootCounter,
  createStallWatch,
  createFleetService,
  createHttpService,
  createTftpService,
  createDhcpService,
  createRaQuenchService,
];

/**
 * Starts services in order and stops them in reverse. If one fails to start, the ones
 * already running are stopped before the error propagates, so a half-started
 * appliance never keeps sockets open.
 */
export class Appliance {
  private readonly running: Service[] = [];

  constructor(
    readonly parts: ApplianceParts,
    private readonly factories: ServiceFactory[] = SERVICE_FACTORIES,
  ) {}

  async start(): Promise<void> {
    for (const factory of this.factories) {
      let service: Service | undefined;
      try {
        // A factory that throws must also stop what already runs, or its open sockets keep the process alive.
        service = factory(this.parts);
        if (!service) continue;
        await service.start();
      } catch (err) {
        const name = service?.name ?? (factory.name || 'service');
        this.parts.log.error({ err, service: name }, `${name} failed to start`);
        await this.stop();
        throw err;
      }
      this.running.push(service);
    }
  }

  async stop(): Promise<void> {
    while (this.running.length) {
      const service = this.running.pop()!;
      try {
        await service.stop();
      } catch (err) {
        this.parts.log.warn({ err, service: service.name }, `${service.name} did not stop cleanly`);
      }
    }
  }
}
