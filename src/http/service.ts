import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AppContext, Service } from '../appliance.ts';
import { createHttpApp } from './app.ts';

export class HttpService implements Service {
  readonly name = 'http';
  private server: Server | undefined;

  constructor(private readonly ctx: AppContext) {}

  async start(): Promise<void> {
    const app = createHttpApp(this.ctx);
    const { host, port } = this.ctx.config.http;
    const server = createServer(app.callback());
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
    this.ctx.log.info({ address: `${addr.address}:${addr.port}` }, 'http listening');
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

export function createHttpService(ctx: AppContext): Service {
  return new HttpService(ctx);
}
