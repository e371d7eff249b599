/**
 * The import rules (docs/architecture.md) are checked by dependency-cruiser: src/ as it is
 * must pass, and a forbidden import must fail, so a rule that stopped matching cannot pass
 * silently.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from './helpers/appliance.ts';

const DEPCRUISE = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'depcruise');

function depcruise(cwd: string, target: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(DEPCRUISE, [target, '--config', '.dependency-cruiser.cjs'], { cwd, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

test('src/ follows the import rules', async (t) => {
  const r = await depcruise(PROJECT_ROOT, 'src');
  t.is(r.code, 0, r.out);
  t.regex(r.out, /no dependency violations found/);
});

test('a forbidden import fails the check, naming the rule and the import', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'bca-layering-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const sub of ['src/boot', 'src/dhcp', 'src/net']) await mkdir(path.join(dir, sub), { recursive: true });
  await copyFile(path.join(PROJECT_ROOT, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  await copyFile(path.join(PROJECT_ROOT, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  await writeFile(path.join(dir, 'src/dhcp/packet.ts'), 'export const BOOTREQUEST = 1;\n');
  await writeFile(
    path.join(dir, 'src/boot/decide.ts'),
    "import { readFileSync } from 'node:fs';\nimport { BOOTREQUEST } from '../dhcp/packet.ts';\nexport const probe = () => readFileSync(String(BOOTREQUEST));\n",
  );
  await writeFile(path.join(dir, 'src/net/mac.ts'), "import { probe } from '../boot/decide.ts';\nexport const mac = probe;\n");
  const r = await depcruise(dir, 'src');
  t.not(r.code, 0, r.out);
  t.regex(r.out, /boot-is-pure: src\/boot\/decide\.ts → src\/dhcp\/packet\.ts/);
  t.regex(r.out, /boot-is-pure: src\/boot\/decide\.ts → fs/);
  t.regex(r.out, /net-is-a-leaf: src\/net\/mac\.ts → src\/boot\/decide\.ts/);
});
