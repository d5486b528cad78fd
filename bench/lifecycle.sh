#!/usr/bin/env bash
# Benchmarks a pod and container lifecycle through crisp's CRI, step by step
# (RunPodSandbox, CreateContainer, StartContainer, the exit, StopContainer,
# RemoveContainer, StopPodSandbox, RemovePodSandbox), with crisp's runc and
# crun handlers, against `runc run` and `crun run` (and their create / start
# / delete) of the same rootfs.
#
# Usage (as root): bench/lifecycle.sh [BUILD_DIR]   BUILD_DIR defaults to build-bench
# Builds first (scripts/build.sh, incremental) unless SKIP_BUILD=1.
# Environment: N, the counted runs per path (default 50), WARMUP, the runs
#              per path first and not counted (default 3), LOG_LEVEL, the
#              suite's log level (default info, crisp's default), NO_CRUN=1
#              to leave crun out (crisp's crun handler and crun itself).
#
# bench/lifecycle_bench.py does the measuring (see its header): it builds the
# fixture images, serves busybox from Debian's docker-registry on 127.0.0.1,
# starts a suite as the integration tests do (bridge crispbench1,
# 10.253.0.0/24), pulls busybox once, and runs the paths in turn, run by run.
# It needs runc, conmon, Debian's containernetworking-plugins in /usr/lib/cni,
# docker-registry, skopeo, iproute2 and iptables; crun is optional.  It
# removes every pod, runc/crun container, the bridge and the nat chains it
# caused, and stops the suite and the registry by their pids; this script
# removes the temporary folder.  Other work on the machine skews the numbers:
# the load and the busiest processes are printed before and after.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build-bench}
case $build in /*) ;; *) build=$top/$build ;; esac
N=${N:-50}
WARMUP=${WARMUP:-3}
LOG_LEVEL=${LOG_LEVEL:-info}
python=/usr/bin/python3

if [ "$(id -u)" != 0 ]; then
	echo "lifecycle.sh: run as root (pods, containers, bridges and iptables need it)" >&2
	exit 1
fi
for f in /usr/lib/cni/loopback /usr/lib/cni/bridge /usr/lib/cni/host-local \
	/usr/lib/cni/portmap /usr/bin/docker-registry; do
	if [ ! -x "$f" ]; then
		echo "lifecycle.sh: $f is missing (scripts/install-deps.sh test)" >&2
		exit 1
	fi
done
for c in runc conmon skopeo; do
	if ! command -v "$c" >/dev/null; then
		echo "lifecycle.sh: $c is missing" >&2
		exit 1
	fi
done
no_crun=()
if [ "${NO_CRUN:-0}" = 1 ] || ! command -v crun >/dev/null; then
	no_crun=(--no-crun)
fi
# Always (incrementally) built: stale daemons would be measured silently.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
	echo "== building into $build"
	bash "$top/scripts/build.sh" "$build" >/dev/null
fi
for f in bin/crisp python/api_pb2.py python/api_pb2_grpc.py; do
	if [ ! -e "$build/$f" ]; then
		echo "lifecycle.sh: $build/$f is missing" >&2
		exit 1
	fi
done
bash "$top/scripts/ensure-user.sh"

tmp=$(mktemp -d /tmp/crisp-lifecycle-bench-XXXXXX)
chmod 755 "$tmp"
# Never through a mount a failure left (an overlay root, a pin): those are
# reported and stay, rather than their contents being deleted.
remove_tmp() {
	local left
	left=$(awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	if [ -n "$left" ]; then
		echo "lifecycle.sh: mounts left under $tmp, not removed:" >&2
		echo "$left" >&2
		rm -rf --one-file-system "$tmp" 2>/dev/null || true
		return
	fi
	rm -rf "$tmp"
}
trap remove_tmp EXIT
trap 'exit 130' INT TERM

# Idle and stolen shares of all CPUs over one second, from /proc/stat: the
# load average alone does not say whether other work runs right now, in
# this VM (idle) or elsewhere on its host (steal).
idle_steal() {
	local a b
	a=$(awk '/^cpu / { print $5 + $6, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $5 + $6, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[3] - x[3];
		if (t <= 0) t = 1
		printf "%.0f%% idle, %.0f%% stolen", 100 * (y[1] - x[1]) / t, 100 * (y[2] - x[2]) / t }'
}

load() {
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(idle_steal) over 1 s"
	echo "busiest processes (%CPU over their lifetime):"
	ps -eo pid,pcpu,etime,comm --sort=-pcpu 2>/dev/null | sed -n '2,6p' | sed 's/^/   /' || true
}

ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }
first() { "$@" 2>/dev/null | head -1 || echo '?'; }
echo "== machine"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel:  $(uname -sr)"
echo "cgroups: $(stat -f -c %T /sys/fs/cgroup) on /sys/fs/cgroup$(
	[ -d /sys/fs/cgroup/unified ] && echo ", cgroup2 on /sys/fs/cgroup/unified (hybrid)")"
echo "fs:      $(df -T "$tmp" | awk 'NR == 2 { print $2 " on " $1 }') (the suite's root and state, the bundle)"
btype=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
echo "build:   $build (${btype:-RelWithDebInfo, the CMakeLists default}), log_level $LOG_LEVEL"
echo "runc:    $(first runc --version) ($(ver runc))"
if command -v crun >/dev/null; then
	echo "crun:    $(first crun --version) ($(ver crun))"
fi
echo "conmon:  $(first conmon --version) ($(ver conmon))"
echo "tools:   containernetworking-plugins $(ver containernetworking-plugins), docker-registry $(ver docker-registry), skopeo $(ver skopeo), python3-grpcio $(ver python3-grpcio)"
load
echo

bench_cmd=("$python" "$top/bench/lifecycle_bench.py" --work "$tmp" --runs "$N"
	--warmup "$WARMUP" --log-level "$LOG_LEVEL" "${no_crun[@]}")
echo "\$ CRISP_BUILD_DIR=$build ${bench_cmd[*]}"
CRISP_BUILD_DIR=$build "${bench_cmd[@]}"

echo
echo "== after the run"
load
