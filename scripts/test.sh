#!/usr/bin/env bash
# Installs what crisp needs on Debian 12, builds it with the test hooks, and runs
# every test: formatting, the C unit tests (ctest) and the integration tests
# (pytest against the real daemons).  Must run as root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" != 0 ]; then
	echo "scripts/test.sh: the tests start the real daemons and must run as root" >&2
	exit 1
fi

bash scripts/install-deps.sh test
bash scripts/ensure-user.sh crisp
bash scripts/build.sh build-test -DENABLE_TEST_HOOKS=ON -DENABLE_WERROR=ON

status=0
echo "== format"
bash scripts/check-format.sh || status=1

echo "== unit tests"
(cd build-test && ctest --output-on-failure) || status=1

echo "== integration tests"
set +e
CRISP_BUILD_DIR="$top/build-test" /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration
rc=$?
set -e
# 5 means pytest collected nothing: that is a failure here, not a pass.
[ "$rc" = 0 ] || status=1

exit "$status"
