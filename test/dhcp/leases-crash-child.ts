/**
 * Child process for the kill -9 test: binds leases as fast as it can, and prints
 * `ACK <ip> <mac>` only after the lease file says the lease is durable — exactly when the
 * server would send the ACK. The parent kills it with SIGKILL at a random moment.
 * argv: <lease file> <first client number> <compactBytes>
 */
import { pino } from 'pino';
import { LeaseFile } from '../../src/dhcp/lease-file.ts';
import { LeasePool } from '../../src/dhcp/leases.ts';
import { parseMac, type Mac } from '../../src/net/mac.ts';

const [file, firstArg, compactArg] = process.argv.slice(2);
const first = Number(firstArg);
const pool = new LeasePool({ start: '10.9.0.1', end: '10.9.255.254', leaseTime: 3600 });
const leases = new LeaseFile(file!, pool, pino({ level: 'silent' }), { compactBytes: Number(compactArg) });
await leases.open();
process.stdout.write('READY\n');

const mac = (n: number): Mac => parseMac(n.toString(16).padStart(12, '0'))!;
let next = first;
const acked: { ip: string; mac: Mac }[] = [];

async function worker(): Promise<void> {
  for (;;) {
    // Mostly new clients; now and then a renewal of one already acknowledged.
    const renew = acked.length > 0 && next % 5 === 0 ? acked[next % acked.length] : undefined;
    const c = renew ? { mac: renew.mac } : { mac: mac(next) };
    next++;
    const ip = renew?.ip ?? pool.offer(c)?.ip;
    if (!ip) return;
    const r = pool.bind(c, ip);
    if (!r.ok) throw new Error(r.reason);
    await leases.commit();
    if (!renew) acked.push({ ip, mac: c.mac });
    process.stdout.write(`ACK ${ip} ${c.mac}\n`);
  }
}
await Promise.all(Array.from({ length: 32 }, worker));
