import { Appliance, createParts } from '../appliance.ts';
import type { AppConfig } from '../config.ts';
import { createLogger } from '../log.ts';

export interface ServeOptions {
  config: AppConfig;
  version: string;
  /** Whether --base-url was given (without it, a loopback URL is worth a warning). */
  baseUrlGiven: boolean;
}

/** `serve` (the default command): starts every service and runs until SIGTERM or SIGINT. */
export async function serveCommand({ config, version, baseUrlGiven }: ServeOptions): Promise<void> {
  const log = createLogger(config.log);
  const appliance = new Appliance(await createParts(config, log));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    appliance.stop().then(
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

  await appliance.start();
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
  if (!baseUrlGiven && /^http:\/\/(127\.|\[::1\])/.test(config.baseUrl)) {
    // Without --iface nothing says which address machines reach us on; loopback URLs would boot nothing remote.
    log.warn({ baseUrl: config.baseUrl }, `scripts point at ${config.baseUrl}, which only this host can reach: set --base-url (or --iface) for remote machines`);
  }
}
