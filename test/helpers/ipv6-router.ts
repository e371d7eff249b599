/**
 * A stand-in IPv6 router for the RA quench tests (radvd is not installed): run inside a test
 * namespace, it advertises on DEVICE with a real router lifetime, every INTERVAL_MS and in
 * answer to each router solicitation, as radvd would. It sends through the appliance's own raw
 * socket (src/net/router-advert.ts); the advertisement is a real one on the wire, seen by the
 * kernel of every host on the link. Prints "advertising" once the socket is open.
 *
 *   ip netns exec NS node --import tsx test/helpers/ipv6-router.ts DEVICE [LIFETIME_S] [INTERVAL_MS]
 */
import { networkInterfaces } from 'node:os';
import { buildRouterAdvertisement, ICMPV6_ROUTER_SOLICITATION } from '../../src/net/icmpv6.ts';
import { parseMac } from '../../src/net/mac.ts';
import { RawIcmpv6Socket } from '../../src/net/router-advert.ts';

const [device = 'eth0', lifetime = '1800', interval = '500'] = process.argv.slice(2);
const mac = parseMac(networkInterfaces()[device]?.[0]?.mac ?? '');
const advert = buildRouterAdvertisement(Number(lifetime), mac);
const socket = RawIcmpv6Socket.open(device);
const advertise = () => {
  try {
    socket.sendToAllNodes(advert);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
  }
};
advertise();
setInterval(advertise, Number(interval));
// The socket is non-blocking: poll for solicitations as the appliance does.
setInterval(() => {
  for (let msg = socket.recv(); msg; msg = socket.recv()) if (msg.data[0] === ICMPV6_ROUTER_SOLICITATION) advertise();
}, 50);
process.on('SIGTERM', () => {
  socket.close();
  process.exit(0);
});
process.stdout.write('advertising\n');
