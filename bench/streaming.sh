#!/usr/bin/env bash
# Benchmarks crisp-streamd: the round trip of an exec (`echo hi` in a running
# container) over SPDY and WebSocket, against ExecSync and `runc exec` of the
# same container, and port-forward throughput over SPDY and WebSocket,
# against a direct TCP connection from the host to the same server at the
# pod's IP.
#
# Usage (as root): bench/streaming.sh [BUILD_DIR]   BUILD_DIR defaults to build-bench
# Builds first (scripts/build.sh, incremental) unless SKIP_BUILD=1.
# Environment: N, the counted execs per path (default 50), PF_N, the counted
#              port-forward connections per path (default 20), MIB, the
#              MiB each of them moves (default 64), WARMUP, the runs per
#              path first and not counted (default 3), LOG_LEVEL, the
#              suite's log level (default info, crisp's default).
#
# bench/streaming_bench.py does the measuring (see its header): it builds the
# fixture images, serves busybox from Debian's docker-registry on 127.0.0.1,
# starts a suite as the integration tests do (bridge crispbench3,
# 10.249.0.0/24), runs one pod with a sleeping container and two busybox nc
# servers, and drives streamd with the project's own client
# (tests/integration/stream_client.py).  It needs runc, conmon, Debian's
# containernetworking-plugins in /usr/lib/cni, docker-registry, skopeo,
# iproute2 and iptables.  It removes the pod, the bridge and the nat chains
# it caused, and stops the suite and the registry by their pids; this script
# removes the temporary folder.  Other work on the machine skews the
# numbers: the load and the busiest processes are printed before and after.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
build=$(bench_build_dir "${1:-}")
bench_pods_prepare crisp-streaming-bench "$build"
N=${N:-50}
PF_N=${PF_N:-20}
MIB=${MIB:-64}
WARMUP=${WARMUP:-3}
LOG_LEVEL=${LOG_LEVEL:-info}
python=/usr/bin/python3

bench_machine "$build" "the suite's root and state" ", log_level $LOG_LEVEL"
echo "runc:    $(bench_first runc --version) ($(bench_ver runc))"
echo "conmon:  $(bench_first conmon --version) ($(bench_ver conmon))"
echo "tools:   busybox-static $(bench_ver busybox-static), containernetworking-plugins $(bench_ver containernetworking-plugins), python3 $(bench_first "$python" --version | cut -d' ' -f2), python3-grpcio $(bench_ver python3-grpcio)"
bench_load
echo

bench_cmd=("$python" "$top/bench/streaming_bench.py" --work "$bench_tmp" --runs "$N"
	--pf-runs "$PF_N" --mib "$MIB" --warmup "$WARMUP" --log-level "$LOG_LEVEL")
echo "\$ CRISP_BUILD_DIR=$build ${bench_cmd[*]}"
CRISP_BUILD_DIR=$build "${bench_cmd[@]}"

echo
echo "== after the run"
bench_load
