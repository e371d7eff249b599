/** A scripted TFTP client on 127.0.0.1: sends what a test says and queues every packet it gets, with the port it came from. */
import { createSocket, type Socket } from 'node:dgram';
import { parsePacket, type TftpPacket } from '../../src/tftp/packet.ts';
import type { TftpServiceOptions } from '../../src/tftp/service.ts';
import { startServer, type Running } from './helpers.ts';

export class RawClient {
  private readonly queue: { packet: TftpPacket; port: number }[] = [];
  private waiter: (() => void) | undefined;
  constructor(readonly socket: Socket) {
    socket.on('message', (msg, rinfo) => {
      const r = parsePacket(msg);
      if (r.ok) this.queue.push({ packet: r.packet, port: rinfo.port });
      this.waiter?.();
    });
  }
  static async open(): Promise<RawClient> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new RawClient(s);
  }
  send(buf: Buffer, port: number): void {
    this.socket.send(buf, port, '127.0.0.1');
  }
  /** The next packet, or undefined after `ms`. */
  async next(ms = 5000): Promise<{ packet: TftpPacket; port: number } | undefined> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }
  async expect<K extends TftpPacket['op']>(op: K, ms = 5000): Promise<{ packet: Extract<TftpPacket, { op: K }>; port: number }> {
    const got = await this.next(ms);
    if (!got) throw new Error(`no ${op} within ${ms} ms`);
    if (got.packet.op !== op) throw new Error(`expected ${op}, got ${JSON.stringify(got.packet)}`);
    return got as { packet: Extract<TftpPacket, { op: K }>; port: number };
  }
  close(): void {
    this.socket.close();
  }
}

/** A server on `root` (startServer's overrides) and one scripted client, both closed when the test ends. */
export async function serverWithClient(t: { teardown(fn: () => Promise<void> | void): void }, root: string, overrides: Partial<TftpServiceOptions> = {}): Promise<{ srv: Running; c: RawClient }> {
  const srv = await startServer(root, overrides);
  const c = await RawClient.open();
  t.teardown(() => {
    c.close();
    return srv.stop();
  });
  return { srv, c };
}
