/**
 * Counting and logging packets we drop because they do not parse. Every one is counted;
 * the log is capped per second, so a flood of garbage cannot turn into a flood of log
 * lines (and the disk or journald behind them).
 */
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Peer } from './transport.ts';

export class MalformedReporter {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly perSecond = 5,
    private readonly now: () => number = Date.now,
  ) {}

  report(reason: string, from: Peer, port: number, length: number): void {
    this.metrics.malformedPackets.inc({ protocol: 'dhcp' });
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed }, `dhcp: ${this.suppressed} more malformed packets dropped in the last second (not logged one by one)`);
      this.windowStart = t;
      this.logged = 0;
      this.suppressed = 0;
    }
    if (this.logged < this.perSecond) {
      this.logged += 1;
      this.log.debug({ from: `${from.address}:${from.port}`, port, length, reason }, `dhcp: dropped malformed packet from ${from.address}:${from.port}: ${reason}`);
    } else {
      this.suppressed += 1;
    }
  }
}
