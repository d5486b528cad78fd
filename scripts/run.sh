#!/usr/bin/env bash
# Installs what crisp needs on Debian 12, builds it, and runs the suite in the
# foreground, serving CRI on /run/crisp/crisp.sock (Ctrl-C or SIGTERM stops it).
# Extra arguments go to `crisp run`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh run
bash scripts/ensure-user.sh crisp
bash scripts/install-cni-default.sh
bash scripts/build.sh build
exec build/bin/crisp run "$@"
