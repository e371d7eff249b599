/** The built package (`npm run build` → dist/) runs without src/: the machines page's assets come from dist/ too. */
import test from 'ava';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/appliance.ts';
import { onLines } from '../helpers/lines.ts';
import { freePort } from '../http/server.ts';

const DIST = path.join(PROJECT_ROOT, 'dist', 'main.js');

(existsSync(DIST) ? test : test.skip)('the built package serves /ui from dist/, with no src/ beside it (after npm run build)', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'bca-dist-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(path.join(PROJECT_ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  cpSync(path.join(PROJECT_ROOT, 'package.json'), path.join(root, 'package.json'));
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, 'dist', 'main.js'), '--address', `127.0.0.1:${port}`, '--data-path', path.join(root, 'data'), '--log-format', 'json'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready within 20 s: ${stderr}`)), 20_000);
    child.stdout.on(
      'data',
      onLines((line) => {
        if (line.includes('"msg":"ready')) {
          clearTimeout(timer);
          resolve();
        }
      }),
    );
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  for (const [p, type] of [
    ['/ui', /text\/html/],
    ['/ui/app.js', /javascript/],
    ['/ui/style.css', /text\/css/],
  ] as const) {
    const res = await fetch(`http://127.0.0.1:${port}${p}`);
    t.is(res.status, 200, p);
    t.regex(res.headers.get('content-type') ?? '', type, p);
  }
});
