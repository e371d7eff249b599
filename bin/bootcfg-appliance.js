#!/usr/bin/env node
// Runs the compiled build (npm run build) when present, else the TypeScript sources through tsx.
// In a checkout, a build older than a source file beside it would run code that is no longer
// there, without a word: the sources run instead (through tsx), and standard error says why.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/main.js', import.meta.url);
const sources = fileURLToPath(new URL('../src/', import.meta.url));

/** The first source file changed after the build, if any (a package has dist/ and no src/). */
function changedSince(builtAt) {
  if (!existsSync(sources)) return undefined;
  for (const file of readdirSync(sources, { recursive: true })) {
    if (!file.endsWith('.ts')) continue;
    if (statSync(sources + file).mtimeMs > builtAt) return `src/${file}`;
  }
  return undefined;
}

async function runSources() {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/main.ts', import.meta.url).href);
}

if (!existsSync(built)) {
  await runSources();
} else {
  const changed = changedSince(statSync(built).mtimeMs);
  let tsx = false;
  if (changed !== undefined) {
    tsx = await import('tsx/esm/api').then(
      () => true,
      () => false,
    );
    process.stderr.write(
      `bootcfg-appliance: dist/ is older than ${changed}: ${tsx ? 'running src/ through tsx' : 'running the old dist/ (tsx is not installed)'}; \`npm run build\` brings dist/ up to date\n`,
    );
  }
  if (tsx) await runSources();
  else await import(built.href);
}
