// Passes ava's TAP through and ends with the plain "N passed, N failed, N skipped" line CI reads.
// Exit status: non-zero if any test failed or the TAP stream ended without a plan.
import { createInterface } from 'node:readline';

let passed = 0,
  failed = 0,
  skipped = 0,
  sawPlan = false;
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  process.stdout.write(`${line}\n`);
  if (/^ok \d+/.test(line)) {
    if (/# SKIP/i.test(line)) skipped++;
    else if (/# TODO/i.test(line)) skipped++;
    else passed++;
  } else if (/^not ok \d+/.test(line)) {
    if (/# TODO/i.test(line)) skipped++;
    else failed++;
  } else if (/^1\.\.\d+/.test(line)) sawPlan = true;
}
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed > 0 || !sawPlan ? 1 : 0;
