import { readFileSync } from 'node:fs';
import type { AppContext, Service } from '../appliance.ts';
import { DEFAULT_LIMITS, DEFAULT_MAX_TRANSFERS, TftpServer } from './server.ts';
import { DEFAULT_RETRANSMIT } from './session.ts';

/** IPv4 + UDP + TFTP DATA headers: the largest block that fits one frame is MTU - 32 (1468 on Ethernet). */
const DATA_OVERHEAD = 32;

/**
 * The largest blksize worth granting on `iface`: a block bigger than one frame is sent as IP
 * fragments, and losing any fragment loses the whole block (dnsmasq clamps the same way).
 */
export function blksizeForInterface(iface: string | undefined, fallback = DEFAULT_LIMITS.maxBlksize): number {
  if (!iface || iface.includes('/')) return fallback;
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${iface}/mtu`, 'utf8').trim());
    if (Number.isInteger(mtu) && mtu > 68) return Math.min(fallback, mtu - DATA_OVERHEAD);
  } catch {
    /* no sysfs (not Linux, or the interface went away): keep the fallback */
  }
  return fallback;
}

export class TftpService implements Service {
  readonly name = 'tftp';
  private server: TftpServer | undefined;

  constructor(private readonly ctx: AppContext) {}

  async start(): Promise<void> {
    const { config, log, metrics, timeline, firmware } = this.ctx;
    const listen = config.tftp;
    if (!listen) return;
    const maxBlksize = blksizeForInterface(config.iface);
    const server = new TftpServer({
      host: listen.host,
      port: listen.port,
      root: config.firmwarePath,
      catalog: firmware,
      serveOtherFiles: true,
      maxTransfers: DEFAULT_MAX_TRANSFERS,
      limits: { ...DEFAULT_LIMITS, maxBlksize },
      retransmit: DEFAULT_RETRANSMIT,
      log,
      metrics,
      timeline,
    });
    await server.start();
    this.server = server;
    const addr = server.address();
    const offered = firmware.list().filter((e) => e.status === 'ok').map((e) => e.name);
    log.info({ address: `${addr.address}:${addr.port}`, root: config.firmwarePath, firmware: offered, maxBlksize }, `tftp listening on ${addr.address}:${addr.port}`);
  }

  /** The bound port; tests listen on port 0. */
  get port(): number {
    return this.server?.address().port ?? 0;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }
}

export function createTftpService(ctx: AppContext): Service | undefined {
  return ctx.config.tftp ? new TftpService(ctx) : undefined;
}
