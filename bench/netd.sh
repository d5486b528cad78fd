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
build=${1:-$top/build-bench}
case $build in /*) ;; *) build=$top/$build ;; esac
N=${N:-50}
WARMUP=${WARMUP:-2}
python=/usr/bin/python3

if [ "$(id -u)" != 0 ]; then
	echo "netd.sh: run as root (namespaces, bridges and iptables need it)" >&2
	exit 1
fi
for p in loopback bridge host-local portmap; do
	if [ ! -x "/usr/lib/cni/$p" ]; then
		echo "netd.sh: /usr/lib/cni/$p is missing (containernetworking-plugins)" >&2
		exit 1
	fi
done
# Always (incrementally) built: a stale netd would be measured silently.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
	echo "== building into $build"
	bash "$top/scripts/build.sh" "$build" >/dev/null
fi
for f in bin/crisp-netd python/internal_pb2.py; do
	if [ ! -e "$build/$f" ]; then
		echo "netd.sh: $build/$f is missing" >&2
		exit 1
	fi
done
bash "$top/scripts/ensure-user.sh"

tmp=$(mktemp -d /tmp/crisp-netd-bench-XXXXXX)
chmod 755 "$tmp" # the crisp user must reach netd's socket in it
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Idle share of all CPUs over one second, from /proc/stat: the load average
# alone does not say whether the other work is running right now.
idle_pct() {
	local a b
	a=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
		t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

load() {
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(idle_pct)% idle over 1 s"
	echo "busiest processes (%CPU over their lifetime):"
	ps -eo pid,pcpu,etime,comm --sort=-pcpu 2>/dev/null | sed -n '2,6p' | sed 's/^/   /' || true
}

ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }
echo "== machine"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel:  $(uname -sr)"
echo "fs:      $(df -T "$tmp" | awk 'NR == 2 { print $2 " on " $1 }') (netd's state and net.db, the IPAM data)"
btype=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
echo "build:   $build (${btype:-RelWithDebInfo, the CMakeLists default})"
echo "tools:   containernetworking-plugins $(ver containernetworking-plugins), iproute2 $(ver iproute2), iptables $(ver iptables)"
load
echo

bench_cmd=("$python" "$top/bench/netd_bench.py" --work "$tmp" --pods "$N" --warmup "$WARMUP")
echo "\$ CRISP_BUILD_DIR=$build ${bench_cmd[*]}"
CRISP_BUILD_DIR=$build "${bench_cmd[@]}"

echo
echo "== after the run"
load
