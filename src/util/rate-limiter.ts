/**
 * At most `limit` events pass per window of `windowMs`; the rest are only counted, so the
 * next one that passes can say how many were held back. Log lines about packets use it: a
 * flood of garbage must not become a flood of log lines (and the disk or journald behind them).
 */
export class RateLimiter {
  private windowStart = Number.NEGATIVE_INFINITY;
  private passed = 0;
  private held = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Undefined when this event is held back; otherwise how many were held back since the last one passed. */
  take(): number | undefined {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.passed = 0;
    }
    if (this.passed >= this.limit) {
      this.held += 1;
      return undefined;
    }
    this.passed += 1;
    const held = this.held;
    this.held = 0;
    return held;
  }
}
