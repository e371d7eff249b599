/**
 * Child process for the lease file lock test: opens the lease file as the appliance does and
 * holds it until killed. Prints `READY <pid>` once it holds it, or `REFUSED <message>` and
 * exits 3 when another process does.
 * argv: <lease file>
 */
import { pino } from 'pino';
import { LeaseFile, LeaseFileLockedError } from '../../src/dhcp/lease-file.ts';
import { LeasePool } from '../../src/dhcp/leases.ts';

const [file] = process.argv.slice(2);
const leases = new LeaseFile(file!, new LeasePool({ start: '10.9.0.1', end: '10.9.0.254', leaseTime: 3600 }), pino({ level: 'silent' }));
try {
  await leases.open();
} catch (err) {
  if (!(err instanceof LeaseFileLockedError)) throw err;
  process.stdout.write(`REFUSED ${err.message}\n`);
  process.exit(3);
}
process.stdout.write(`READY ${process.pid}\n`);
// Held until the parent kills us: a timer keeps the event loop (and so the lock) alive, bounded.
setTimeout(() => process.exit(0), 120_000);
