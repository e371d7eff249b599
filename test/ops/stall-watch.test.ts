import test from 'ava';
import { steps } from '../helpers/steps.ts';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { StallWatch } from '../../src/events/stall-watch.ts';
import { BootTimeline } from '../../src/events/timeline.ts';
import { Metrics } from '../../src/metrics.ts';
import type { Mac } from '../../src/net/mac.ts';

function setup() {
  let now = 1_000_000;
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString('utf8').split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  const timeline = new BootTimeline(undefined, () => now);
  const metrics = new Metrics();
  const watch = new StallWatch({ timeline, metrics, log: pino({ level: 'info', base: undefined }, sink) }, { now: () => now, checkEveryMs: 3_600_000 });
  return { timeline, metrics, lines, watch, advance: (ms: number) => (now += ms) };
}

const A = '52:54:00:5a:00:01' as Mac;
const B = '52:54:00:5a:00:02' as Mac;

test('a stalled boot is reported once, with its MAC and what never came', async (t) => {
  const { timeline, metrics, lines, watch, advance } = setup();
  await watch.start();
  t.teardown(() => watch.stop());
  timeline.record(steps.dhcpRequest({ mac: A }));
  timeline.record(steps.dhcpReply({ mac: A }, 'undionly.kpxe'));
  advance(30_000);
  t.deepEqual(watch.check(), []);
  advance(31_000);
  t.deepEqual(watch.check(), [A]);
  t.deepEqual(watch.check(), [], 'not again');
  const line = lines.find((l) => l.step === 'boot.stalled');
  t.is(line?.mac, A);
  t.is(line?.lastStep, 'dhcp.reply');
  t.regex(String(line?.msg), /boot stalled: DHCP answered with undionly\.kpxe, but no TFTP or HTTP request followed/);
  t.is((await metrics.bootsStalled.get()).values[0]?.value, 1);
});

test('a machine that moves on, fails or is ignored is not reported as stalled', async (t) => {
  const { timeline, metrics, watch, advance } = setup();
  await watch.start();
  t.teardown(() => watch.stop());
  timeline.record(steps.dhcpReply({ mac: A }, 'undionly.kpxe'));
  timeline.record(steps.dhcpIgnored({ mac: B }, 'no-firmware'));
  advance(50_000);
  timeline.record(steps.tftpStart({ mac: A }, 'undionly.kpxe'));
  timeline.record(steps.tftpEnd({ mac: A }, 'undionly.kpxe'));
  advance(20_000);
  t.deepEqual(watch.check(), [], 'A is 20 s past its last step, B was ignored');
  advance(60_000);
  t.deepEqual(watch.check(), [A], 'A never came back after TFTP');
  t.is((await metrics.bootsStalled.get()).values[0]?.value, 1);
});

test('after a stall, a new step arms the watch again', async (t) => {
  const { timeline, watch, advance } = setup();
  await watch.start();
  t.teardown(() => watch.stop());
  timeline.record(steps.dhcpReply({ mac: A }));
  advance(61_000);
  t.deepEqual(watch.check(), [A]);
  timeline.record(steps.dhcpRequest({ mac: A }));
  advance(61_000);
  t.deepEqual(watch.check(), [A]);
});
