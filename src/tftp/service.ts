/**
 * The appliance's TFTP service: the generic server (server.ts) given the firmware folder as
 * its files (files.ts), and its transfers turned into metrics, one log line each and the
 * machine's tftp.start/tftp.end steps.
 */
import { readFileSync } from 'node:fs';
import type { HostPort } from '../net/host-port.ts';
import type { BootTimeline } from '../events/timeline.ts';
import type { FirmwareCatalog } from '../firmware/catalog.ts';
import { grubPrefix, PREFIXED_IMAGES, withGrubPrefix } from '../firmware/grub-prefix.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Service } from '../service.ts';
import { RateLimiter } from '../util/rate-limiter.ts';
import { resolveRequest, type RootPolicy } from './files.ts';
import type { OptionLimits } from './options.ts';
import { DEFAULT_LIMITS, DEFAULT_MAX_TRANSFERS, DEFAULT_MAX_TRANSFERS_PER_CLIENT, type TftpEngine, TftpServer, type TftpServerEvents, type TransferReport } from './server.ts';
import { DEFAULT_RETRANSMIT, type RetransmitPolicy } from './session.ts';
import { sharedCopy } from '../util/shared-bytes.ts';

/** IPv4 + UDP + TFTP DATA headers: the largest block that fits one frame is MTU - 32 (1468 on Ethernet). */
const DATA_OVERHEAD = 32;

/** Malformed datagrams are logged at most this often; the counter has the total. */
const MALFORMED_LOG_INTERVAL_MS = 5000;
/** Likewise datagrams from a stray port, and requests refused over the per-client cap (a spoofed flood makes many). */
const FLOOD_LOG_INTERVAL_MS = 5000;

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

export interface TftpServiceOptions {
  listen: HostPort;
  /** The folder served: the firmware folder. */
  root: string;
  /** Its MTU caps the blksize granted; undefined keeps the default limit. */
  iface: string | undefined;
  catalog: FirmwareCatalog;
  /** --images-path: `images/…` over TFTP, for GRUB (which fetches kernels and initrds over TFTP). */
  images?: string | undefined;
  /** The address written into the prefix of the arm64 GRUB image (firmware/grub-prefix.ts); undefined serves it as built. */
  serverAddress?: string | undefined;
  /** Files made on request (GRUB configs). */
  generated?: RootPolicy['generated'];
  /** Serve files under the root that SHA256SUMS does not list (GRUB configs, test files). Default true. */
  serveOtherFiles?: boolean;
  maxTransfers?: number;
  /** Transfers in flight at once from one IP address (--tftp-max-per-client); default 8. */
  maxTransfersPerClient?: number;
  /** --tftp-engine; default `worker`. */
  engine?: TftpEngine;
  limits?: OptionLimits;
  retransmit?: RetransmitPolicy;
}

export interface TftpServiceDeps {
  log: Logger;
  metrics: Pick<Metrics, 'tftpTransfers' | 'tftpBytes' | 'tftpRetransmissions' | 'malformedPackets'>;
  timeline: Pick<BootTimeline, 'record' | 'macForAddress'>;
}

export class TftpService implements Service {
  readonly name = 'tftp';
  private server: TftpServer | undefined;
  private readonly perClientLimitLog = new RateLimiter(1, FLOOD_LOG_INTERVAL_MS);

  constructor(
    private readonly options: TftpServiceOptions,
    private readonly deps: TftpServiceDeps,
  ) {}

  async start(): Promise<void> {
    const { options } = this;
    const limits = options.limits ?? { ...DEFAULT_LIMITS, maxBlksize: blksizeForInterface(options.iface) };
    const policy: RootPolicy = {
      root: options.root,
      catalog: options.catalog,
      serveOtherFiles: options.serveOtherFiles ?? true,
      images: options.images,
      generated: options.generated,
      patched: this.patchedImages(),
    };
    const server = new TftpServer({
      host: options.listen.host,
      port: options.listen.port,
      resolve: (filename, peer) => resolveRequest(filename, policy, peer),
      maxTransfers: options.maxTransfers ?? DEFAULT_MAX_TRANSFERS,
      maxTransfersPerClient: options.maxTransfersPerClient ?? DEFAULT_MAX_TRANSFERS_PER_CLIENT,
      limits,
      retransmit: options.retransmit ?? DEFAULT_RETRANSMIT,
      events: this.events(),
      engine: options.engine ?? 'worker',
    });
    await server.start();
    this.server = server;
    const addr = server.address();
    const offered = options.catalog
      .list()
      .filter((e) => e.status === 'ok')
      .map((e) => e.name);
    if (server.engineProblem)
      this.deps.log.warn({ engine: 'event-loop', reason: server.engineProblem }, `tftp: the worker engine cannot run here (${server.engineProblem}); Node's event loop sends every block`);
    this.deps.log.info(
      { address: `${addr.address}:${addr.port}`, root: options.root, firmware: offered, maxBlksize: limits.maxBlksize, engine: server.engine },
      `tftp listening on ${addr.address}:${addr.port}`,
    );
  }

  /** The arm64 GRUB image with this appliance's address as its prefix, once per start. */
  private patchedImages(): Map<string, Buffer> {
    const { catalog, serverAddress } = this.options;
    const out = new Map<string, Buffer>();
    if (!serverAddress) return out;
    for (const name of PREFIXED_IMAGES) {
      const fw = catalog.resolve(name);
      if (!fw) continue;
      try {
        out.set(name, sharedCopy(withGrubPrefix(fw.data, serverAddress)));
        this.deps.log.info({ firmware: name, prefix: grubPrefix(serverAddress) }, `tftp: ${name} is served with prefix ${grubPrefix(serverAddress)}`);
      } catch (err) {
        this.deps.log.error({ err, firmware: name }, `tftp: ${name}: ${(err as Error).message}; served as built, so GRUB reads its config from the next-server of the DHCP ACK`);
      }
    }
    return out;
  }

  /** The bound port; tests listen on port 0. */
  get port(): number {
    return this.server?.address().port ?? 0;
  }

  /** Transfers in flight. */
  get transfers(): number {
    return this.server?.transfers ?? 0;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
  }

  private events(): TftpServerEvents {
    const { log, metrics, timeline } = this.deps;
    const malformedLog = new RateLimiter(1, MALFORMED_LOG_INTERVAL_MS);
    const strayLog = new RateLimiter(1, FLOOD_LOG_INTERVAL_MS);
    return {
      started: (peer, file, requested) => {
        timeline.record({ step: 'tftp.start', ip: peer.address, detail: { file, options: { ...requested } } });
      },
      finished: (report) => this.finished(report),
      malformed: (reason, peer) => {
        metrics.malformedPackets.inc({ protocol: 'tftp' });
        const held = malformedLog.take();
        if (held !== undefined) log.debug({ client: `${peer.address}:${peer.port}`, reason, dropped: held + 1 }, 'tftp: malformed packet dropped');
      },
      retransmitted: (packets) => metrics.tftpRetransmissions.inc(packets),
      stray: (from, transfer) => {
        const held = strayLog.take();
        if (held !== undefined) {
          log.debug({ client: `${from.address}:${from.port}`, transfer: `${transfer.address}:${transfer.port}`, dropped: held + 1 }, 'tftp: packet from a stray port answered "Unknown transfer ID"');
        }
      },
      failed: (what, err, peer) => {
        const client = peer ? `${peer.address}:${peer.port}` : undefined;
        // The listener's own socket errors are ICMP answers to ERRORs we sent: one client's business.
        if (peer) log.error({ err, client }, `tftp: ${what}`);
        else log.debug({ err }, `tftp ${what}`);
      },
      // Said once, as a warning: transfers go on, each costing the event loop what the thread spared it.
      engineFailed: (err) => log.warn({ err, engine: 'event-loop' }, `tftp: the worker thread failed (${err.message}); the event loop sends every block from now on`),
    };
  }

  private finished(r: TransferReport): void {
    const { log, metrics, timeline } = this.deps;
    metrics.tftpTransfers.inc({ outcome: r.outcome });
    if (r.outcome === 'per-client-limit') {
      // Counted each time, logged at most once per interval, and kept off the machine's
      // timeline: a flood spoofing one machine's address must not write its boot history.
      const held = this.perClientLimitLog.take();
      if (held !== undefined) {
        log.warn(
          { client: `${r.peer.address}:${r.peer.port}`, file: r.file, outcome: r.outcome, detail: r.detail, refused: held + 1 },
          `tftp: refused ${r.file} to ${r.peer.address}: too many transfers from that address (${r.detail})`,
        );
      }
      return;
    }
    if (r.bytes > 0) metrics.tftpBytes.inc(r.bytes);
    const ms = Math.round(r.ms * 10) / 10;
    const { peer } = r;
    const line = {
      // TFTP carries no MAC; the timeline knows which machine holds the address (DHCP bound it).
      mac: timeline.macForAddress(peer.address),
      client: `${peer.address}:${peer.port}`,
      file: r.file,
      options: { ...r.requested },
      ...(r.mode !== 'octet' ? { mode: r.mode } : {}),
      ...(r.granted ? { granted: r.granted } : {}),
      outcome: r.outcome,
      bytes: r.bytes,
      ...(r.size !== undefined ? { size: r.size } : {}),
      ms,
      ...(r.retransmissions ? { retransmissions: r.retransmissions } : {}),
      ...(r.detail ? { detail: r.detail } : {}),
    };
    // A size probe and a refused write are normal; an abandoned or failed read is worth a warning.
    const level = r.outcome === 'timeout' || r.outcome === 'error' ? 'warn' : 'info';
    log[level](line, `tftp ${r.file} to ${peer.address}: ${r.outcome}${r.outcome === 'ok' ? ` (${r.bytes} bytes in ${ms} ms)` : r.detail ? ` (${r.detail})` : ''}`);
    timeline.record({ step: 'tftp.end', ip: peer.address, detail: { file: r.file, outcome: r.outcome, bytes: r.bytes, ms } });
  }
}
