import type { AppConfig } from './config.ts';
import type { Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { BootTimeline } from './events/timeline.ts';
import { FirmwareCatalog } from './boot/firmware.ts';
import type { Store } from './store/store.ts';
import { FileStore } from './store/file-store.ts';

/** What every service is handed: configuration and the shared observability sinks. */
export interface AppContext {
  config: AppConfig;
  log: Logger;
  metrics: Metrics;
  timeline: BootTimeline;
  /** iPXE builds verified against SHA256SUMS at start; only these are ever handed out. */
  firmware: FirmwareCatalog;
  /** Boot and cloud configs; loaded and watched by the store service (first in SERVICE_FACTORIES). */
  store: Store;
}

/** A long-running part of the appliance (HTTP, TFTP, DHCP, the store's watcher). */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type ServiceFactory = (ctx: AppContext) => Promise<Service | undefined> | Service | undefined;

/**
 * Starts services in order and stops them in reverse. If one fails to start, the ones
 * already running are stopped before the error propagates, so a half-started
 * appliance never keeps sockets open.
 */
export class Appliance {
  private readonly running: Service[] = [];

  constructor(
    readonly ctx: AppContext,
    private readonly factories: ServiceFactory[],
  ) {}

  async start(): Promise<void> {
    for (const factory of this.factories) {
      let service: Service | undefined;
      try {
        // A factory that throws (bad settings) must also stop what already runs, or its open sockets keep the process alive.
        service = (await factory(this.ctx)) ?? undefined;
        if (!service) continue;
        await service.start();
      } catch (err) {
        const name = service?.name ?? (factory.name || 'service');
        this.ctx.log.error({ err, service: name }, `${name} failed to start`);
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
        this.ctx.log.warn({ err, service: service.name }, `${service.name} did not stop cleanly`);
      }
    }
  }
}

export async function createContext(config: AppConfig, log: Logger): Promise<AppContext> {
  const firmware = await FirmwareCatalog.load(config.firmwarePath, log);
  const metrics = new Metrics({ processMetrics: true });
  const store = new FileStore(config.dataPath, { log, metrics });
  return { config, log, metrics, timeline: new BootTimeline(), firmware, store };
}
