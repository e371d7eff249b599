import test from 'ava';
import { goStyleFlags } from '../../src/util/go-flags.ts';

const cases: [string[], string[]][] = [
  [['-address=0.0.0.0:8080'], ['--address=0.0.0.0:8080']],
  [
    ['-data-path', '/var/lib/bootcfg'],
    ['--data-path', '/var/lib/bootcfg'],
  ],
  [
    ['--images-path', 'x'],
    ['--images-path', 'x'],
  ],
  [['-h'], ['-h']],
  [['-V'], ['-V']],
  [['-ipv6-ra-quench'], ['--ipv6-ra-quench']],
  [
    ['-log-level', 'debug', 'serve'],
    ['--log-level', 'debug', 'serve'],
  ],
  [
    ['--', '-address=x'],
    ['--', '-address=x'],
  ],
  [
    ['-address', '-'],
    ['--address', '-'],
  ],
];
for (const [input, want] of cases) {
  test(`goStyleFlags(${JSON.stringify(input)})`, (t) => {
    t.deepEqual(goStyleFlags(input), want);
  });
}
