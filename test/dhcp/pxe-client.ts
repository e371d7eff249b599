/**
 * A scripted PXE client, run inside a client namespace:
 *   node --import tsx test/dhcp/pxe-client.ts '<json ClientScript>'
 * It sends one request the way the named firmware does and prints every reply it sees
 * (one JSON line each, decoded with our codec) until the wait ends, then exits 0.
 * Shared with the full-mode tests: see scripted.ts for the wrapper.
 */
import type dgram from 'node:dgram';
import { openDeviceSocket } from '../../src/net/bind-device.ts';
import { encodePacket, tryParsePacket } from '../../src/dhcp/packet.ts';
import { request } from './fixtures.ts';
import type { ClientScript, SeenReply } from './scripted.ts';
import type { Mac } from '../../src/net/mac.ts';

async function main(): Promise<void> {
  const script = JSON.parse(process.argv[2] ?? '{}') as ClientScript;
  const fromPort = script.fromPort ?? 68;
  const { socket } = await openDeviceSocket({ device: script.iface, port: fromPort, reuseAddr: true });
  const seen: SeenReply[] = [];
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, script.waitMs ?? 1500);
    socket.on('message', (data: Buffer, rinfo: dgram.RemoteInfo) => {
      const parsed = tryParsePacket(data);
      // Only replies to our transaction; our own broadcast (and anything else) is noise.
      if (!parsed.ok || parsed.packet.op !== 2 || parsed.packet.xid !== script.xid >>> 0) return;
      seen.push({ from: { address: rinfo.address, port: rinfo.port }, length: data.length, hex: data.toString('hex') });
      process.stdout.write(`${JSON.stringify(seen.at(-1))}\n`);
      if (script.maxReplies && seen.length >= script.maxReplies) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const pkt = request({
    kind: script.kind,
    mac: script.mac as Mac,
    xid: script.xid,
    type: script.type,
    ciaddr: script.ciaddr,
    giaddr: script.giaddr,
    serverId: script.serverId,
    requestedIp: script.requestedIp,
  });
  for (const [code, hex] of Object.entries(script.options ?? {})) {
    if (hex === '') pkt.options.delete(Number(code));
    else pkt.options.set(Number(code), Buffer.from(hex, 'hex'));
  }
  if (script.flags !== undefined) pkt.flags = script.flags;
  const to = script.to ?? { address: '255.255.255.255', port: 67 };
  await new Promise<void>((resolve, reject) => socket.send(encodePacket(pkt), to.port, to.address, (err) => (err ? reject(err) : resolve())));
  await done;
  socket.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`pxe-client: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
