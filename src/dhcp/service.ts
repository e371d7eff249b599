/**
 * The DHCP side of the appliance as one service: port 67 in the configured mode (ProxyDHCP
 * or full DHCP) and the PXE boot server on 4011 in both, every socket tied to --iface.
 * If any socket cannot be tied to the interface, nothing DHCP-related starts and the
 * error says why: a DHCP server answering on the wrong network breaks someone else's.
 */
import type { AppContext, Service } from '../appliance.ts';
import type { BootSettings } from '../boot/decide.ts';
import { bootSettingsFor } from '../boot/settings.ts';
import { DhcpServer, fullDhcpSettings } from './server.ts';
import { ProxyDhcpResponder, PxeBootServer, type ResponderDeps } from './proxy.ts';
import { DhcpTransport, PXE_PORT, SERVER_PORT, type Destination } from './transport.ts';

/** Port 67 per mode; full mode is src/dhcp/server.ts (DhcpServer opens its own bound port-67 transport and the lease file). */
type Port67Factory = (ctx: AppContext, boot: BootSettings) => Service;

const PORT_67: Record<'proxy' | 'full', Port67Factory> = {
  proxy: (ctx, boot) => new ProxyDhcpService(ctx, boot),
  full: (ctx, boot) => new DhcpServer(ctx, fullDhcpSettings(ctx, boot)),
};

/** One bound UDP port with a responder behind it. */
class ResponderService implements Service {
  private transport: DhcpTransport | undefined;

  constructor(
    readonly name: string,
    private readonly ctx: AppContext,
    private readonly port: number,
    private readonly makeResponder: (deps: ResponderDeps) => { handle(data: Buffer, from: { address: string; port: number }): Promise<void> },
    private readonly boot: BootSettings,
  ) {}

  async start(): Promise<void> {
    const { ctx } = this;
    const device = ctx.config.iface;
    const serverAddress = ctx.config.advertisedAddress;
    if (!device || !serverAddress) throw new Error(`${this.name}: needs --iface with an IPv4 address`);
    const transport = await DhcpTransport.open({
      device,
      port: this.port,
      onHandlerError: (err, from) => ctx.log.error({ err, from: `${from.address}:${from.port}`, port: this.port }, `${this.name}: handler failed (bug); packet dropped`),
    });
    this.transport = transport;
    const responder = this.makeResponder({
      log: ctx.log,
      metrics: ctx.metrics,
      timeline: ctx.timeline,
      serverAddress,
      settings: this.boot,
      send: (bytes: Buffer, to: Destination) => transport.send(bytes, to),
    });
    transport.onPacket((data, from) => responder.handle(data, from));
    ctx.log.info({ iface: device, port: this.port, address: serverAddress }, `${this.name}: listening on UDP ${this.port}, bound to ${device} (${serverAddress})`);
  }

  async stop(): Promise<void> {
    await this.transport?.close();
    this.transport = undefined;
  }
}

class ProxyDhcpService extends ResponderService {
  constructor(ctx: AppContext, boot: BootSettings) {
    super('proxydhcp', ctx, SERVER_PORT, (deps) => new ProxyDhcpResponder(deps), boot);
  }
}

class BootServerService extends ResponderService {
  constructor(ctx: AppContext, boot: BootSettings) {
    super('pxe-bootserver', ctx, PXE_PORT, (deps) => new PxeBootServer(deps), boot);
  }
}

/** Starts its parts in order and, if one fails, stops the ones already up before rethrowing. */
class DhcpService implements Service {
  readonly name = 'dhcp';
  private readonly running: Service[] = [];

  constructor(
    private readonly ctx: AppContext,
    private readonly parts: Service[],
  ) {}

  async start(): Promise<void> {
    for (const part of this.parts) {
      try {
        await part.start();
      } catch (err) {
        await this.stop();
        this.ctx.log.error({ err, part: part.name, iface: this.ctx.config.iface }, `DHCP not started: ${(err as Error).message}`);
        throw err;
      }
      this.running.push(part);
    }
  }

  async stop(): Promise<void> {
    while (this.running.length) await this.running.pop()!.stop().catch(() => undefined);
  }
}

/** Undefined with --dhcp off (or without --iface): the appliance then serves HTTP/TFTP only. */
export function createDhcpService(ctx: AppContext): Service | undefined {
  const { mode } = ctx.config.dhcp;
  if (mode === 'off') return undefined;
  const boot = bootSettingsFor(ctx.config, ctx.firmware);
  return new DhcpService(ctx, [PORT_67[mode](ctx, boot), new BootServerService(ctx, boot)]);
}
