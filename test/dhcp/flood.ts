/**
 * Sends `count` mutated copies of real-shaped requests (mutate.ts) from a client namespace:
 *   node --import tsx test/dhcp/flood.ts '{"count":100000,"seed":1,"iface":"eth0","targets":[…]}'
 * Bounded in count and time; sends in batches so the socket buffer never hides a drop.
 * Prints one JSON summary line.
 */
import { openDeviceSocket } from '../../src/net/bind-device.ts';
import { seedCorpus } from './fixtures.ts';
import { mutate, rng } from './mutate.ts';

interface FloodScript {
  count: number;
  seed: number;
  iface: string;
  targets: { address: string; port: number }[];
  batch?: number;
  /** Hard stop, ms, whatever count says. */
  maxMs?: number;
}

const script = JSON.parse(process.argv[2] ?? '{}') as FloodScript;
const { socket } = await openDeviceSocket({ device: script.iface, port: 0 });
const seeds = seedCorpus();
const rand = rng(script.seed);
const batch = script.batch ?? 250;
const started = Date.now();
let sent = 0;
let errors = 0;
while (sent < script.count && Date.now() - started < (script.maxMs ?? 20_000)) {
  const pending: Promise<void>[] = [];
  for (let k = 0; k < batch && sent < script.count; k++, sent++) {
    const bytes = mutate(seeds[sent % seeds.length]!, rand);
    const to = script.targets[sent % script.targets.length]!;
    pending.push(
      new Promise<void>((resolve) =>
        socket.send(bytes, to.port, to.address, (err) => {
          if (err) errors += 1;
          resolve();
        }),
      ),
    );
  }
  await Promise.all(pending);
  // Let the receiver drain between batches: this measures robustness, not buffer sizes.
  await new Promise((r) => setTimeout(r, 2));
}
socket.close();
process.stdout.write(`${JSON.stringify({ sent, errors, ms: Date.now() - started })}\n`);
