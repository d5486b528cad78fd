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
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
build=$(bench_build_dir "${1:-}")
N=${N:-50}
WARMUP=${WARMUP:-3}
LOG_LEVEL=${LOG_LEVEL:-info}
python=/usr/bin/python3
no_crun=()
if [ "${NO_CRUN:-0}" = 1 ] || ! command -v crun >/dev/null; then
	no_crun=(--no-crun)
fi
bench_pods_prepare crisp-lifecycle-bench "$build"
tmp=$bench_tmp

bench_machine "$build" "the suite's root and state, the bundle" ", log_level $LOG_LEVEL"
echo "runc:    $(bench_first runc --version) ($(bench_ver runc))"
if command -v crun >/dev/null; then
	echo "crun:    $(bench_first crun --version) ($(bench_ver crun))"
fi
echo "conmon:  $(bench_first conmon --version) ($(bench_ver conmon))"
echo "tools:   containernetworking-plugins $(bench_ver containernetworking-plugins), docker-registry $(bench_ver docker-registry), skopeo $(bench_ver skopeo), python3-grpcio $(bench_ver python3-grpcio)"
bench_load
echo

bench_cmd=("$python" "$top/bench/lifecycle_bench.py" --work "$tmp" --runs "$N"
	--warmup "$WARMUP" --log-level "$LOG_LEVEL" "${no_crun[@]}")
echo "\$ CRISP_BUILD_DIR=$build ${bench_cmd[*]}"
CRISP_BUILD_DIR=$build "${bench_cmd[@]}"

echo
echo "== after the run"
bench_load
