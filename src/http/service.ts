import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { HostPort } from '../net/host-port.ts';
import type { Service } from '../service.ts';

/** The HTTP listener; what it serves is the request handler it is given (app.ts createHttpHandler). */
export class HttpService implements Service {
  readonly name = 'http';
  private server: Server | undefined;

  constructor(
    private readonly listen: HostPort,
    private readonly handler: RequestListener,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { host, port } = this.listen;
    const server = createServer(this.handler);
    // iPXE and UEFI HTTP Boot keep connections open between script and kernel downloads.
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    this.log.info({ address: `${addr.address}:${addr.port}` }, 'http listening');
  }

  /** The bound port; tests listen on port 0. */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
