import { pino, type Logger } from 'pino';
import type { AppConfig } from './config.ts';

export type { Logger };

/** JSON lines for journald and log shippers; pino-pretty when a person is watching a TTY. */
export function createLogger(log: AppConfig['log'], destination: NodeJS.WritableStream = process.stdout): Logger {
  if (log.format === 'pretty') {
    return pino({
      level: log.level,
      transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level: log.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
