/**
 * The floor under any DHCP server written for Node: a datagram in, the same bytes back as a
 * BOOTREPLY, on the socket the appliance opens (net/bind-device.ts: tied to the interface,
 * broadcast allowed). No parsing, no decision, no log line: what Node's event loop, dgram and the
 * kernel cost per packet, measured beside ours and dnsmasq by `bench/dhcp/proxy.ts --floor`.
 *   node --import tsx bench/dhcp/floor-responder.ts <iface> <port>
 */
import { openDeviceSocket } from '../../src/net/bind-device.ts';

const [iface, portText] = process.argv.slice(2);
const port = Number(portText);
if (!iface || !Number.isInteger(port)) {
  process.stderr.write('usage: floor-responder.ts <iface> <port>\n');
  process.exit(2);
}
const { socket } = await openDeviceSocket({ device: iface, port, recvBufferSize: 4 * 1024 * 1024 });
socket.on('message', (data, rinfo) => {
  data[0] = 2; // BOOTREPLY: all the generator checks besides the xid
  // As the appliance answers: a ROM's DISCOVER by broadcast, a 4011 request back where it came from.
  if (port === 67) socket.send(data, 68, '255.255.255.255');
  else socket.send(data, rinfo.port, rinfo.address);
});
