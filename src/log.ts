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
  const time = isoTimeCached();
  const stream = destination ?? new LineWriter(1, { droppedLine: droppedLogLine });
  const logger = pino({ level: log.level, base: undefined, timestamp: time }, stream);
  // A multistream wants pino's per-line metadata, which only pino's own write sets.
  if (Reflect.get(stream, Symbol.for('pino.metadata')) !== true) flatLines.set(logger, { time, stream });
  return logger;
}

/** A line's fields when all of them are strings, numbers or booleans (undefined ones are left out, as pino does). */
export type FlatFields = Record<string, string | number | boolean | undefined>;
export type FlatLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** The loggers createLogger made for JSON, with what their lines are made of. */
const flatLines = new WeakMap<Logger, { time: () => string; stream: NodeJS.WritableStream | LineWriter }>();
/** `,"key":` per field name, escaped once. */
const keyPrefixes = new Map<string, string>();

/**
 * `log[level](fields, msg)` for the lines of every packet and request, writing the same bytes
 * as pino: `{"level":N` + time + each defined field in order + `,"msg":…}` + newline.
 * pino's generic serialiser looks up serializers and stringifiers and escapes every key on
 * each line, ~30 % of a ProxyDHCP offer's JavaScript (bench/dhcp/proxy.md); here keys are
 * escaped once and values are only strings, numbers and booleans. A logger not made by
 * createLogger for JSON (pretty, a test's own pino) and a field of another type go through pino.
 * test/ops/log-flat.test.ts compares both outputs.
 */
export function logFlat(log: Logger, level: FlatLevel, fields: FlatFields, msg: string): void {
  if (!log.isLevelEnabled(level)) return;
  const flat = flatLines.get(log);
  if (flat === undefined) {
    log[level](fields, msg);
    return;
  }
  let props = '';
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    let prefix = keyPrefixes.get(key);
    if (prefix === undefined) {
      prefix = `,${jsonString(key)}:`;
      if (keyPrefixes.size < 1024) keyPrefixes.set(key, prefix);
    }
    switch (typeof value) {
      case 'string':
        props += prefix + jsonString(value);
        break;
      case 'number':
        props += prefix + (Number.isFinite(value) ? String(value) : 'null');
        break;
      case 'boolean':
        props += prefix + (value ? 'true' : 'false');
        break;
      default:
        // Not a flat field after all (the type allows none, a caller's cast might): pino's serialiser decides.
        log[level](fields, msg);
        return;
    }
  }
  flat.stream.write(`{"level":${log.levels.values[level]}${flat.time()}${props},"msg":${jsonString(msg)}}\n`);
}

/** Node 25's JSON.stringify is what pino uses there; before, its own escaping, which leaves lone surrogates as they are. */
const STRINGIFY_ALWAYS = Number(process.versions.node.split('.')[0]) >= 25;

/** What a string needs escaped in JSON: a quote, a backslash, a control character. */
const ESCAPED = /["\\\u0000-\u001f]/;
const CONTROL = /[\u0000-\u001f]/;

/**
 * A string as pino writes it: short ones without a control character get only `"` and `\`
 * escaped. Tested by regular expressions, which V8 runs as machine code: a loop over
 * charCodeAt was twice their time on a ProxyDHCP offer's thirty strings.
 */
function jsonString(s: string): string {
  if (STRINGIFY_ALWAYS || s.length > 100) return JSON.stringify(s);
  if (!ESCAPED.test(s)) return `"${s}"`;
  if (CONTROL.test(s)) return JSON.stringify(s);
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
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
