import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { createLogger, type FlatFields, logFlat } from '../../src/log.ts';

/** Lines written to memory, as the logger hands them over. */
function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines };
}

const CASES: [FlatFields, string][] = [
  [{ mac: '52:54:00:12:34:56', uuid: undefined, arch: 'bios', archCode: 0, ipxe: false, port: 67, giaddr: undefined }, 'proxy: DISCOVER from 52:54:00:12:34:56 (bios)'],
  [{ quote: 'say "hi" \\ there', ctrl: 'tab\there\nnewline', empty: '', nan: Number.NaN, inf: -Infinity, neg: -1.5, yes: true }, 'a "quoted" \\ message — with ünïcode'],
  [{ long: `${'x'.repeat(150)}"`, surrogate: 'lone \ud800 half', emoji: '😀' }, 'y'.repeat(120)],
  [{ 'odd "key"': 'v', 'ctl\u0001key': 1 }, ''],
  [{ percent: '%s %d' }, 'a %s message %d %%'],
  [{}, 'no fields'],
];

test('logFlat writes the same bytes as pino for flat fields, at every level', (t) => {
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    for (const [fields, msg] of CASES) {
      const ours = sink();
      const theirs = sink();
      // One clock for both: the time field is the only part that could differ.
      const now = Date.now();
      const realNow = Date.now;
      Date.now = () => now;
      try {
        const a = createLogger({ level: 'debug', format: 'json' }, ours.stream);
        const b = createLogger({ level: 'debug', format: 'json' }, theirs.stream);
        logFlat(a, level, { ...fields }, msg);
        b[level]({ ...fields }, msg);
      } finally {
        Date.now = realNow;
      }
      t.is(ours.lines.length, 1);
      t.deepEqual(ours.lines, theirs.lines, `${level} ${msg}`);
      t.deepEqual(JSON.parse(ours.lines[0]!).msg, msg);
    }
  }
});

test('logFlat writes nothing below the logger level', (t) => {
  const out = sink();
  const log = createLogger({ level: 'info', format: 'json' }, out.stream);
  logFlat(log, 'debug', { a: 1 }, 'hidden');
  logFlat(log, 'info', { a: 1 }, 'shown');
  t.is(out.lines.length, 1);
  t.is(JSON.parse(out.lines[0]!).msg, 'shown');
});

test('a logger createLogger did not make, and a field that is not flat, go through pino', (t) => {
  const out = sink();
  const own = pino({ level: 'info', base: undefined, formatters: { level: (label) => ({ level: label }) } }, out.stream);
  logFlat(own, 'info', { a: 1 }, 'through pino');
  t.is(JSON.parse(out.lines[0]!).level, 'info');
  const made = sink();
  const log = createLogger({ level: 'info', format: 'json' }, made.stream);
  logFlat(log, 'info', { nested: { b: 2 } as unknown as string }, 'object field');
  t.deepEqual(JSON.parse(made.lines[0]!).nested, { b: 2 });
});
