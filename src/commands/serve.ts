import { Appliance, createParts } from '../appliance.ts';
import type { AppConfig } from '../config.ts';
import { createLogger, type Logger } from '../log.ts';
import { LinkWatch } from '../net/link-watch.ts';

export interface ServeOptions {
  config: AppConfig;
  version: string;
  /** Whether --base-url was given (without it, a loopback URL is worth a warning). */
  baseUrlGiven: boolean;
  /** Resolves the configuration again, reading --iface's address anew: used when that address changes. */
  reload?: () => AppConfig;
  /** Decisions taken before the logger existed (--dhcp auto), logged at start. */
  notes?: string[];
}

function logReady(log: Logger, config: AppConfig, version: string): void {
  log.info(
    {
      version,
      iface: config.iface ?? null,
      dhcp: config.dhcp.mode,
      tftp: config.tftp ? `${config.tftp.host}:${config.tftp.port}` : 'off',
      bootScript: `${config.baseUrl}/boot.ipxe`,
      ipxeScript: `${config.baseUrl}/ipxe?uuid=<uuid>&mac=<mac>`,
    },
    `ready: iPXE clients are sent to ${config.baseUrl}/boot.ipxe`,
  );
}

/**
 * `serve` (the default command): starts every service and runs until SIGTERM or SIGINT. It
 * watches --iface: a link that is down at start or flaps later needs nothing (the sockets stay
 * bound to the interface), but a new address is in every reply, so the services are restarted
 * with it, around the same boot timeline.
 */
export async function serveCommand({ config, version, baseUrlGiven, reload, notes = [] }: ServeOptions): Promise<void> {
  const log = createLogger(config.log);
  for (const note of notes) log.info({ dhcp: config.dhcp.mode }, note);
  let appliance = new Appliance(await createParts(config, log));
  // Stops and restarts run one after another, never interleaved.
  let queue: Promise<void> = Promise.resolve();
  let stopping = false;
  let watch: LinkWatch | undefined;

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    watch?.stop();
    log.info({ signal }, 'stopping');
    queue = queue
      .then(() => appliance.stop())
      .then(
        () => {
          log.info('stopped');
          log.flush?.();
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, 'stop failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const restart = (to: string) => {
    if (!reload) return;
    queue = queue.then(async () => {
      if (stopping) return;
      log.warn({ address: to }, `restarting the services to advertise ${to}`);
      await appliance.stop();
      let next: AppConfig;
      try {
        next = reload();
      } catch (err) {
        // e.g. --dhcp-range no longer inside the interface's subnet: nothing correct can be served.
        log.fatal({ err }, `cannot serve with the new address: ${(err as Error).message}`);
        log.flush?.();
        process.exit(2);
      }
      // The machines seen so far stay on the timeline: only the address they are sent to changed.
      appliance = new Appliance(await createParts(next, log, { timeline: appliance.parts.timeline }));
      await appliance.start();
      logReady(log, next, version);
    });
    queue.catch((err: unknown) => {
      log.fatal({ err }, `restart failed: ${(err as Error).message}`);
      process.exit(1);
    });
  };

  if (config.iface) {
    watch = new LinkWatch({ iface: config.iface, log, onAddressChange: (_from, to) => restart(to) });
    watch.start();
  }
  await appliance.start();
  logReady(log, config, version);
  if (!baseUrlGiven && /^http:\/\/(127\.|\[::1\])/.test(config.baseUrl)) {
    // Without --iface nothing says which address machines reach us on; loopback URLs would boot nothing remote.
    log.warn({ baseUrl: config.baseUrl }, `scripts point at ${config.baseUrl}, which only this host can reach: set --base-url (or --iface) for remote machines`);
  }
}
