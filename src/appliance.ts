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
import { BootCounter } from './events/boot-counter.ts';
import { ipxeDiscovers } from './events/ipxe-discovers.ts';
import { StallWatch } from './events/stall-watch.ts';
import { BootTimeline } from './events/timeline.ts';
import { explain, type Explanation } from './explain.ts';
import { FirmwareCatalog, FirmwareTrustError } from './firmware/catalog.ts';
import { createHttpApp } from './http/app.ts';
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
  /** The boot decision's settings, the same for DHCP, /api/explain and `explain`. */
  boot: BootSettings;
  /** Full DHCP's address pool (the metrics count it at scrape time); undefined in other modes. */
  leasePool: LeasePool | undefined;
  /** Full DHCP's fixed hosts and relayed subnets from <data>/dhcp (watched; started by the DHCP service); undefined in other modes. */
  dhcpSite?: DhcpSite | undefined;
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

export async function createParts(config: AppConfig, log: Logger): Promise<ApplianceParts> {
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
  const metrics = new Metrics({ processMetrics: true, leaseCounts: leasePool && (() => totalLeaseCounts([leasePool, ...(dhcpSite?.pools() ?? [])])) });
  const timeline = new BootTimeline();
  if (dhcp.mode === 'full') {
    const { segment } = dhcp;
    const source = new DhcpSiteFiles(config.dataPath, { log, metrics, own: ownSegment(segment.iface, segment.address, segment.netmask, dhcp.range) });
    dhcpSite = new DhcpSite({ leaseDir: path.dirname(dhcp.leaseFile), defaultLeaseTime: dhcp.leaseTime, ownPool: leasePool }, { source, log, timeline });
  }
  const store = new FileStore(config.dataPath, { log, metrics });
  const matchbox = new MatchboxStore(config.dataPath, { log, metrics, checkTemplate: matchboxTemplateProblem });
  return { config, log, metrics, timeline, firmware, store, matchbox, boot: bootSettings(config, firmware), leasePool, dhcpSite };
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
  const app = createHttpApp({
    log,
    metrics,
    timeline,
    store: bootStore(parts),
    firmware,
    imagesPath: config.imagesPath,
    baseUrl: config.baseUrl,
    explain: explainer(parts),
    api: { rules: { stallAfterMs: config.stallAfterMs } },
    matchbox: parts.matchbox,
  });
  return new HttpService(config.http, app.callback(), log);
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
  return dhcpServiceFor(
    { mode: 'full', segment: dhcp.segment, router: dhcp.router, dns: dhcp.dns, leaseTime: dhcp.leaseTime, leaseFile: dhcp.leaseFile, pool: parts.leasePool, site: parts.dhcpSite },
    deps,
  );
}

/** Undefined unless --ipv6-ra-quench (config.ts allows it only with --dhcp full). */
export function createRaQuenchService(parts: ApplianceParts): Service | undefined {
  const { config } = parts;
  if (!config.ipv6RaQuench || config.dhcp.mode !== 'full') return undefined;
  return new RaQuenchService({ iface: config.dhcp.segment.iface, log: parts.log, metrics: parts.metrics, onIpxeDiscover: ipxeDiscovers(parts.timeline) });
}

/** The order matters: the store loads before anything can ask it, DHCP starts last so no client is sent to a service that is not up yet. */
export const SERVICE_FACTORIES: ServiceFactory[] = [
  createStoreService,
  createMatchboxStoreService,
  createBootCounter,
  createStallWatch,
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
