#!/usr/bin/env bash
# The one command that installs and runs the appliance: scripts/run.sh [serve options]
# With the example data and images folder, the Debian installer it boots is fetched first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
case " $* " in
  *" --images-path"* | *" -images-path"* | *" --data-path"* | *" -data-path"*) ;;
  *)
    if [ -z "${BOOTCFG_IMAGES_PATH:-}${BOOTCFG_DATA_PATH:-}" ] && { [ ! -e images/debian/linux ] || [ ! -e images/debian/initrd.gz ]; }; then
      node bin/bootcfg-appliance.js images fetch debian
    fi
    ;;
esac
exec node bin/bootcfg-appliance.js "$@"
