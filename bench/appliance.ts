/**
 * The appliance as the benchmarks run it: the compiled build in dist/, as scripts/install.sh and the systemd unit
 * run it, rebuilt at the first call so that no figure comes from a stale build. Under tsx (as the tests run src/)
 * every module is transformed at load and every closure made per call is wrapped in tsx's `__name` helper, which
 * the installed appliance never pays. BENCH_APPLIANCE=src runs src/ through tsx instead, to compare the two.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cliArgs, PROJECT_ROOT } from '../test/helpers/appliance.ts';

const FROM = process.env.BENCH_APPLIANCE ?? 'dist';
if (FROM !== 'dist' && FROM !== 'src') throw new Error(`BENCH_APPLIANCE must be dist or src, not ${JSON.stringify(FROM)}`);

/** BENCH_NODE_FLAGS="--perf-basic-prof …": node's own flags for the appliance, e.g. to profile it with perf. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

let built = false;

/**
 * package.json's build script, run as whoever owns the checkout: benchmarks run as root (sudo),
 * and a dist/ that root wrote would refuse its owner's next `npm run build`. The script runs
 * through sh with node_modules/.bin on PATH, as npm runs it, without npm's root-only config.
 */
function build(): void {
  const script = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } }).scripts.build;
  const owner = statSync(PROJECT_ROOT);
  const asOwner = process.getuid?.() === 0 && owner.uid !== 0 ? { uid: owner.uid, gid: owner.gid } : {};
  const env = { ...process.env, PATH: `${path.join(PROJECT_ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH ?? ''}` };
  execFileSync('sh', ['-c', script], { cwd: PROJECT_ROOT, env, ...asOwner, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** node's argv (after the binary) that runs the appliance with `args`. */
export function applianceArgs(args: string[]): string[] {
  if (FROM === 'src') return [...NODE_FLAGS, ...cliArgs(args)];
  if (!built) {
    build();
    console.error('bench: the appliance runs from dist/, built just now (BENCH_APPLIANCE=src for src/ through tsx)');
    built = true;
  }
  return [...NODE_FLAGS, path.join(PROJECT_ROOT, 'dist/main.js'), ...args];
}
