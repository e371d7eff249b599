/**
 * The appliance as the benchmarks run it: the compiled build in dist/, as scripts/install.sh and the systemd unit
 * run it, rebuilt at the first call so that no figure comes from a stale build. Under tsx (as the tests run src/)
 * every module is transformed at load and every closure made per call is wrapped in tsx's `__name` helper, which
 * the installed appliance never pays. BENCH_APPLIANCE=src runs src/ through tsx instead, to compare the two.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { cliArgs, PROJECT_ROOT } from '../test/helpers/appliance.ts';

const FROM = process.env.BENCH_APPLIANCE ?? 'dist';
if (FROM !== 'dist' && FROM !== 'src') throw new Error(`BENCH_APPLIANCE must be dist or src, not ${JSON.stringify(FROM)}`);

/** BENCH_NODE_FLAGS="--perf-basic-prof …": node's own flags for the appliance, e.g. to profile it with perf. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);

let built = false;

/** node's argv (after the binary) that runs the appliance with `args`. */
export function applianceArgs(args: string[]): string[] {
  if (FROM === 'src') return [...NODE_FLAGS, ...cliArgs(args)];
  if (!built) {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    console.error('bench: the appliance runs from dist/, built just now (BENCH_APPLIANCE=src for src/ through tsx)');
    built = true;
  }
  return [...NODE_FLAGS, path.join(PROJECT_ROOT, 'dist/main.js'), ...args];
}
