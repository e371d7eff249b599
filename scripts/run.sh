#!/usr/bin/env bash
# The one command that installs and runs the appliance: scripts/run.sh [serve options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec node bin/bootcfg-appliance.js "$@"
