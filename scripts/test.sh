#!/usr/bin/env bash
# The one test command: installs every tool the suite drives, then runs it all.
# Tests that need root (namespaces, VMs) skip themselves when not root; CI runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh --test

# Namespaces left behind by an earlier run that was killed (ours all start with bca-). Each name
# carries its creator's PID before a dot (test/helpers/netns.ts, bench/tftp/burst-threads.sh):
# one whose creator still runs belongs to a benchmark or another run, and is left alone.
if [ "$(id -u)" -eq 0 ]; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^bca-' || true); do
    owner=$(sed -nE 's/^bca-([a-z0-9]+-)*([0-9]+)\..*/\2/p' <<<"$ns")
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
    ip netns del "$ns" || true
  done
fi

npm run typecheck --silent
# Lint, format and the import rules (docs/architecture.md): zero findings, or the suite does not run.
npm run lint --silent
set -o pipefail
npx ava --tap "$@" | node scripts/tap-summary.mjs
