/** Metrics: each appliance's counters are its own; Node's process metrics are collected once per process and shown by each. */
import test from 'ava';
import { Metrics } from '../src/metrics.ts';

test('appliances built one after another (an --iface address change) each show the process metrics and only their own counters', async (t) => {
  const before = new Metrics({ processMetrics: true });
  before.tftpBytes.inc(7);
  const after = new Metrics({ processMetrics: true });
  after.tftpBytes.inc(3);
  for (const [m, bytes] of [
    [before, 7],
    [after, 3],
  ] as const) {
    const text = await m.scraped.metrics();
    t.regex(text, /^process_cpu_seconds_total /m);
    t.regex(text, /^nodejs_eventloop_lag_seconds /m);
    t.regex(text, new RegExp(`^bootcfg_tftp_bytes_total ${bytes}$`, 'm'));
    // Once each: the process's metrics are not registered twice into one scrape.
    t.is(text.match(/^# TYPE process_cpu_seconds_total /gm)?.length, 1);
  }
});

test('without process metrics the scrape is the appliance registry alone', async (t) => {
  const m = new Metrics();
  t.is(m.scraped, m.registry);
  t.notRegex(await m.scraped.metrics(), /^process_cpu_seconds_total /m);
});
