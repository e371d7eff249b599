/** bin/bootcfg-appliance.js picks what to run: the build, unless a file of src/ beside it changed after it. */
import test from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../helpers/appliance.ts';

const run = promisify(execFile);

/** A checkout in miniature: the real bin/, a dist/main.js and a src/main.ts that each say which they are. */
function checkout(t: { teardown(fn: () => void): void }, o: { src: boolean }): string {
  const root = mkdtempSync(path.join(tmpdir(), 'bca-bin-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(path.join(PROJECT_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
  cpSync(path.join(PROJECT_ROOT, 'package.json'), path.join(root, 'package.json'));
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  mkdirSync(path.join(root, 'dist'));
  writeFileSync(path.join(root, 'dist', 'main.js'), "console.log('dist');\n");
  if (o.src) {
    mkdirSync(path.join(root, 'src', 'net'), { recursive: true });
    writeFileSync(path.join(root, 'src', 'main.ts'), "const from: string = 'src';\nconsole.log(from);\n");
    writeFileSync(path.join(root, 'src', 'net', 'mac.ts'), 'export {};\n');
  }
  return root;
}

function age(file: string, secondsAgo: number): void {
  const at = new Date(Date.now() - secondsAgo * 1000);
  utimesSync(file, at, at);
}

async function start(root: string): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [path.join(root, 'bin', 'bootcfg-appliance.js')], { cwd: root, encoding: 'utf8' });
}

test('a build newer than every source runs, silently', async (t) => {
  const root = checkout(t, { src: true });
  symlinkSync('nobody@host.1234', path.join(root, 'src', '.#main.ts'));
  age(path.join(root, 'src', 'main.ts'), 60);
  age(path.join(root, 'src', 'net', 'mac.ts'), 60);
  const { stdout, stderr } = await start(root);
  t.is(stdout, 'dist\n');
  t.is(stderr, '');
});

test('a source changed after the build runs the sources through tsx, and standard error names the file', async (t) => {
  const root = checkout(t, { src: true });
  age(path.join(root, 'dist', 'main.js'), 60);
  age(path.join(root, 'src', 'main.ts'), 120);
  const { stdout, stderr } = await start(root);
  t.is(stdout, 'src\n');
  t.regex(stderr, /dist\/ is older than src\/net\/mac\.ts: running src\/ through tsx; `npm run build` brings dist\/ up to date/);
});

test('a changed page asset of src/ (which the build copies) counts too; a dangling link there is no source', async (t) => {
  const root = checkout(t, { src: true });
  age(path.join(root, 'dist', 'main.js'), 60);
  age(path.join(root, 'src', 'main.ts'), 120);
  age(path.join(root, 'src', 'net', 'mac.ts'), 120);
  mkdirSync(path.join(root, 'src', 'http', 'ui'), { recursive: true });
  writeFileSync(path.join(root, 'src', 'http', 'ui', 'style.css'), 'body {}\n');
  // An editor's lock file: a symbolic link to nothing.
  symlinkSync('nobody@host.1234', path.join(root, 'src', '.#main.ts'));
  const { stdout, stderr } = await start(root);
  t.is(stdout, 'src\n');
  t.regex(stderr, /dist\/ is older than src\/http\/ui\/style\.css: running src\/ through tsx/);
});

test('a package (dist/ without src/) runs dist/, whatever its age', async (t) => {
  const root = checkout(t, { src: false });
  age(path.join(root, 'dist', 'main.js'), 3600);
  const { stdout, stderr } = await start(root);
  t.is(stdout, 'dist\n');
  t.is(stderr, '');
});

test('without a build the sources run through tsx', async (t) => {
  const root = checkout(t, { src: true });
  rmSync(path.join(root, 'dist'), { recursive: true });
  const { stdout, stderr } = await start(root);
  t.is(stdout, 'src\n');
  t.is(stderr, '');
});
