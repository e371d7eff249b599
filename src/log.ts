import { pino, type Logger } from 'pino';
import { LineWriter } from './util/line-writer.ts';
export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LogSettings {
  level: LogLevel;
  format: 'json' | 'pretty';
}

/**
 * One line per protocol step for a person at a terminal: the machine first (a boot is
 * followed by its MAC), then the message, then the other fields as compact JSON. A
 * multi-line dump per step would bury a rack's boot in scrolling.
 */
export const PRETTY_OPTIONS = {
  translateTime: 'SYS:HH:MM:ss.l',
  ignore: 'pid,hostname,mac',
  messageFormat: '{if mac}{mac} {end}{msg}',
  singleLine: true,
} as const;

/**
 * JSON lines for journald and log shippers; pino-pretty when a person is watching a TTY.
 * Standard output gets one write per turn of the event loop with every line of that turn
 * (util/line-writer.ts): a write per line, synchronous or through sonic-boom's thread-pool
 * writes, cost more CPU than the rest of a ProxyDHCP offer put together (bench/dhcp/proxy.md).
 * What is held is written when the process exits.
 */
export function createLogger(log: LogSettings, destination?: NodeJS.WritableStream): Logger {
  if (log.format === 'pretty') {
    return pino({
      level: log.level,
      transport: { target: 'pino-pretty', options: { ...PRETTY_OPTIONS, colorize: Boolean(process.stdout.isTTY) } },
    });
  }
  return pino({ level: log.level, base: undefined, timestamp: isoTimeCached() }, destination ?? new LineWriter(1, { droppedLine: droppedLogLine }));
}

/**
 * pino's isoTime (`,"time":"2026-…Z"`), formatted once per millisecond: a ProxyDHCP offer
 * logs two lines, a busy second thousands, and toISOString was a tenth of the logging's CPU.
 */
function isoTimeCached(): () => string {
  let at = -1;
  let text = '';
  return () => {
    const now = Date.now();
    if (now !== at) {
      at = now;
      text = `,"time":"${new Date(now).toISOString()}"`;
    }
    return text;
  };
}

/** Said in the log's own JSON when lines had to be dropped because standard output did not take them. */
function droppedLogLine(dropped: number): string {
  return `${JSON.stringify({ level: 40, time: new Date().toISOString(), dropped, msg: `${dropped} log lines dropped: standard output did not take them fast enough` })}\n`;
}
