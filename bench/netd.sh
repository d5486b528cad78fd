#!/usr/bin/env bash
# Benchmarks crisp-netd's per-pod network setup: the namespace, CNI ADD, and
# CNI DEL with the namespace's removal, against `ip netns` and the same CNI
# plugins invoked directly.
#
# Usage (as root): bench/netd.sh [BUILD_DIR]     BUILD_DIR defaults to build-bench
# Builds first (scripts/build.sh, incremental) unless SKIP_BUILD=1.
# Environment: N, the pods counted per path (default 50), and WARMUP, the
#              pods run first on each path and not counted (default 2).
#
# bench/netd_bench.py does the measuring (see its header): crisp-netd alone,
# socket-activated as the integration tests start it, with a bridge +
# host-local + portmap conflist (bridge crispbench0, 10.251.0.0/24), and the
# direct path run from Python's subprocess; the two take turns pod by pod.
# It needs Debian's containernetworking-plugins in /usr/lib/cni, iproute2
# and iptables.  It removes every pod, namespace, the bridge and the
# iptables nat chains it caused, and stops netd by its pid; this script
# removes the temporary folder.  Other work on the machine skews the
# numbers: the load and the busiest processes are printed before and after.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
build=$(bench_build_dir "${1:-}")
N=${N:-50}
WARMUP=${WARMUP:-2}
python=/usr/bin/python3

bench_need_root "namespaces, bridges and iptables need it"
bench_need /usr/lib/cni/loopback /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap
bench_build "$build" bin/crisp-netd python/internal_pb2.py
bench_tmpdir crisp-netd-bench # the crisp user must reach netd's socket in it
tmp=$bench_tmp
bench_machine "$build" "netd's state and net.db, the IPAM data"
echo "tools:   containernetworking-plugins $(bench_ver containernetworking-plugins), iproute2 $(bench_ver iproute2), iptables $(bench_ver iptables)"
bench_load
echo

bench_cmd=("$python" "$top/bench/netd_bench.py" --work "$tmp" --pods "$N" --warmup "$WARMUP")
echo "\$ CRISP_BUILD_DIR=$build ${bench_cmd[*]}"
CRISP_BUILD_DIR=$build "${bench_cmd[@]}"

echo
echo "== after the run"
bench_load
