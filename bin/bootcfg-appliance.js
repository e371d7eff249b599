#!/usr/bin/env node
// Runs the compiled build (npm run build) when present, else the TypeScript sources through tsx.
// In a checkout, a build older than a file of src/ (a module, or the machines page's assets the
// build copies) would run or serve what is no longer there, without a word: the sources run
// instead (through tsx), and standard error says why.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/main.js', import.meta.url);
const sources = fileURLToPath(new URL('../src', import.meta.url));

/** The first file under `dir` changed after `builtAt`, if any; what cannot be read (an editor's dangling lock link) is no source. */
function changedSince(dir, builtAt) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    const file = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      const inner = changedSince(file, builtAt);
      if (inner !== undefined) return inner;
    } else if (entry.isFile()) {
      try {
        if (statSync(file).mtimeMs > builtAt) return file;
      } catch {
        // Gone since the directory was read.
      }
    }
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
  // A package has dist/ and no src/: nothing to compare.
  const changed = existsSync(sources) ? changedSince(sources, statSync(built).mtimeMs) : undefined;
  let tsx = false;
  if (changed !== undefined) {
    tsx = await import('tsx/esm/api').then(
      () => true,
      () => false,
    );
    const name = `src${changed.slice(sources.length)}`;
    process.stderr.write(
      `bootcfg-appliance: dist/ is older than ${name}: ${tsx ? 'running src/ through tsx' : 'running the old dist/ (tsx is not installed)'}; \`npm run build\` brings dist/ up to date\n`,
    );
  }
  if (tsx) await runSources();
  else await import(built.href);
}
