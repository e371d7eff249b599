/**
 * One UDP port of one interface with a DHCP pipeline behind it. If the socket cannot be tied
 * to the interface nothing is answered there: a DHCP server answering on the wrong network
 * breaks someone else's.
 */
import type { Logger } from '../log.ts';
import type { Segment } from '../net/interface.ts';
import type { Service } from '../service.ts';
import { DhcpPipeline, type DhcpPipelineDeps } from './pipeline.ts';
import type { DhcpPolicy } from './policy.ts';
import { DhcpTransport, type OpenTransport, type PacketTransport } from './transport.ts';

export class DhcpResponder implements Service {
  private transport: PacketTransport | undefined;
  readonly pipeline: DhcpPipeline;

  constructor(
    readonly name: string,
    private readonly segment: Segment,
    policy: DhcpPolicy,
    deps: Omit<DhcpPipelineDeps, 'send'>,
    private readonly log: Logger,
    /** Said after "listening on UDP <port>, bound to <iface> (<address>)". */
    private readonly extra = '',
    private readonly open: OpenTransport = (opts) => DhcpTransport.open(opts),
  ) {
    this.pipeline = new DhcpPipeline(policy, {
      ...deps,
      send: (bytes, to) => {
        if (!this.transport) return Promise.reject(new Error(`${this.name} is not running`));
        return this.transport.send(bytes, to);
      },
    });
  }

  async start(): Promise<void> {
    const { iface, address } = this.segment;
    const { port } = this.pipeline.policy;
    const transport = await this.open({
      device: iface,
      port,
      onHandlerError: (err, from) => this.log.error({ err, from: `${from.address}:${from.port}`, port }, `${this.name}: handler failed (bug); packet dropped`),
    });
    transport.onPacket((data, from) => this.pipeline.handle(data, from));
    this.transport = transport;
    this.log.info({ iface, port, address }, `${this.name}: listening on UDP ${port}, bound to ${iface} (${address})${this.extra}`);
  }

  async stop(): Promise<void> {
    await this.transport?.close();
    this.transport = undefined;
  }
}
