import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { LineWriter } from '../../src/util/line-writer.ts';

test('LineWriter: the lines of one turn reach the descriptor together, in order, after the turn', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'line-writer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'log');
  const fd = openSync(file, 'w');
  const w = new LineWriter(fd);
  for (let i = 0; i < 1000; i++) t.true(w.write(`line ${i} é\n`));
  t.is(readFileSync(file, 'utf8'), '', 'nothing written while the turn runs');
  await new Promise((r) => setImmediate(r));
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  t.is(lines.length, 1000);
  t.is(lines[0], 'line 0 é');
  t.is(lines[999], 'line 999 é');
  w.write('after\n');
  w.flushSync();
  t.true(readFileSync(file, 'utf8').endsWith('line 999 é\nafter\n'));
  w.end();
  closeSync(fd);
});

test('LineWriter: what the last turn logged is written when the process exits right after (the logger of serve)', (t) => {
  const code = `
    import { createLogger } from './src/log.ts';
    const log = createLogger({ level: 'info', format: 'json' });
    for (let i = 0; i < 3; i++) log.info({ i }, 'before exit');
    process.exit(0);`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: path.resolve(import.meta.dirname, '../..'), encoding: 'utf8' });
  const lines = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { i: number; msg: string; level: number });
  t.deepEqual(
    lines.map((l) => l.i),
    [0, 1, 2],
  );
  t.is(lines[0]!.msg, 'before exit');
  t.is(lines[0]!.level, 30);
});
