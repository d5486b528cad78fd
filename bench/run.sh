#!/usr/bin/env bash
# Benchmarks criapi against a real suite, started as the integration fixture
# starts one (tests/integration/conftest.py): `crisp run --config F --root R
# --state S` in a temporary folder, ready when the log says "ready: serving CRI".
#
# Usage (as root): bench/run.sh [BUILD_DIR]      BUILD_DIR defaults to build-bench
# Builds first (scripts/build.sh, incremental) unless SKIP_BUILD=1.
# Environment: N1 (default 20000), N16 (default 100000), WARMUP (default 5000),
#              EXTRA=1 also measures, to split where the time goes:
#              - bench/grpc_echo, criapi's server shape answering Version with no
#                crisp code: on its completion-queue thread (the gRPC C core
#                floor) and through 16 workers (criapi's handoff);
#              - criapi answering an unknown method UNIMPLEMENTED (never leaves its
#                completion-queue thread).
#              PIN=same runs the suite and the client on CPU 0, PIN=split the
#              suite on CPU 1 and the client on CPU 0 (taskset); unset, the
#              scheduler places them.  On a VM whose idle vCPUs halt, a wakeup
#              across vCPUs costs far more than one on the same vCPU, so this
#              moves the single-call numbers a lot (docs/PERFORMANCE.md).
# ListContainers is measured too, on an empty suite: one IPC round trip to
# sandboxd (bench/list_containers.py measures it with 1000 containers).
# Another process busy on the machine skews everything: the busiest processes
# are printed first, and each run shows how idle the machine was just before.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
build=$(bench_build_dir "${1:-}")
N1=${N1:-20000}
N16=${N16:-100000}
WARMUP=${WARMUP:-5000}
EXTRA=${EXTRA:-0}
PIN=${PIN:-}
case $PIN in
'') server_cpu=() client_cpu=() ;;
same) server_cpu=(taskset -c 0) client_cpu=(taskset -c 0) ;;
split) server_cpu=(taskset -c 1) client_cpu=(taskset -c 0) ;;
*)
	echo "run.sh: PIN is same, split or unset" >&2
	exit 2
	;;
esac

bench_need_root "the suite's backends need it"
bench_build "$build" bin/crisp bin/cri_bench bin/grpc_echo

bin=$build/bin
tmp=$(mktemp -d /tmp/crisp-bench-XXXXXX)
sock=$tmp/state/crisp.sock
log=$tmp/crisp.log
suite_pid=
echo_pids=()

# Only what this script started is stopped, by pid; the supervisor stops its
# own daemons on SIGTERM.
cleanup() {
	local rc=$?
	for p in "${echo_pids[@]}"; do
		bench_stop "$p" grpc_echo || rc=1
	done
	if [ -n "$suite_pid" ]; then
		bench_stop "$suite_pid" crisp || rc=1
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '[crisp]\nlog_level = "debug"\n' >"$tmp/crisp.conf"
start_cmd=("$bin/crisp" run --config "$tmp/crisp.conf" --root "$tmp/root" --state "$tmp/state")
env -u NOTIFY_SOCKET -u LISTEN_FDS "${server_cpu[@]}" "${start_cmd[@]}" >"$log" 2>&1 </dev/null &
suite_pid=$!
bench_await_ready "$suite_pid" "$log"

# criapi's pid, for its CPU time per call (utime+stime from /proc, in ticks).
# Found as the supervisor's child named crisp-criapi, from /proc (no ps needed).
criapi_pid=
for _ in $(seq 50); do
	for st in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$st" || continue
		rest=${line##*) }
		comm=${line#*(}
		comm=${comm%)*}
		read -r -a fields <<<"$rest"
		if [ "${fields[1]}" = "$suite_pid" ] && [ "$comm" = crisp-criapi ]; then
			criapi_pid=${line%% *}
		fi
	done
	[ -n "$criapi_pid" ] && break
	sleep 0.1
done
# The server measured by run(): criapi, or a grpc_echo.
server_pid=$criapi_pid
server_ticks() {
	[ -n "$server_pid" ] || { echo 0; return; }
	# Fields after the ")" of comm: utime is the 12th, stime the 13th.
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' /proc/"$server_pid"/stat
}
hz=$(getconf CLK_TCK)

echo "== machine"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel:  $(uname -sr)"
echo "gRPC:    $(dpkg-query -W -f '${Version}' libgrpc-dev 2>/dev/null || echo '?') (libgrpc_unsecure $(pkg-config --modversion grpc_unsecure 2>/dev/null || echo '?'))"
btype=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
echo "build:   $build (${btype:-RelWithDebInfo, the CMakeLists default})"
echo "suite:   ${server_cpu[*]}${server_cpu[*]:+ }${start_cmd[*]} (pid $suite_pid, criapi pid ${criapi_pid:-?})"
echo "placement: ${PIN:-free, as the scheduler places them}"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(bench_idle_pct)% idle over 1 s"
echo "busiest processes (%CPU over their lifetime):"
ps -eo pid,pcpu,etime,comm --sort=-pcpu 2>/dev/null | sed -n '2,6p' | sed 's/^/   /' || true
echo

# run LABEL cri_bench-args...: prints the command, the bench's report and
# criapi's CPU per call; stops the script if the bench fails.
results=()
run() {
	local label=$1
	shift
	local cmd=("${client_cpu[@]}" "$bin/cri_bench" --socket "$sock" "$@")
	local t0 t1 out idle
	idle=$(bench_idle_pct)
	echo "== $label (machine $idle% idle just before)"
	echo "\$ ${cmd[*]}"
	t0=$(server_ticks)
	if ! out=$("${cmd[@]}" 2>&1); then
		echo "$out"
		if [ "${OPTIONAL:-0}" = 1 ]; then
			echo "(not benchmarked: see the status above)"
			results+=("$label|$idle|not benchmarked")
			echo
			return 0
		fi
		echo "run.sh: $label failed" >&2
		exit 1
	fi
	t1=$(server_ticks)
	echo "$out"
	local line n
	line=$(grep '^RESULT ' <<<"$out")
	n=0
	[[ $line =~ \ total=([0-9]+) ]] && n=${BASH_REMATCH[1]}
	if [ -n "$server_pid" ] && [ "$n" -gt 0 ]; then
		echo "server_cpu  $(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" \
			'BEGIN { printf "%.1f", d * 1e6 / hz / n }') us/call ($(cat /proc/"$server_pid"/comm), user+sys, over all $n calls, warmup included)"
	fi
	results+=("$label|$idle|$line")
	echo
}

version=/runtime.v1.RuntimeService/Version
run "warmup (Version, concurrency 16, not reported)" --method "$version" \
	--requests "$WARMUP" --concurrency 16 --warmup 0 --quiet
run "Version, concurrency 1" --method "$version" --requests "$N1" --concurrency 1 --warmup 1000
run "Version, concurrency 16" --method "$version" --requests "$N16" --concurrency 16 --warmup 1000
# Expected to fail until sandboxd answers it; then it measures an empty list.
OPTIONAL=1 run "ListContainers (no containers), concurrency 1" \
	--method /runtime.v1.RuntimeService/ListContainers --requests "$N1" --concurrency 1 \
	--warmup 1000
if [ "$EXTRA" = 1 ]; then
	for c in 1 16; do
		n=$N1
		[ "$c" = 1 ] || n=$N16
		run "criapi: unknown method, UNIMPLEMENTED on the CQ thread, concurrency $c" \
			--method /runtime.v1.RuntimeService/NoSuchMethod \
			--expect-status UNIMPLEMENTED --requests "$n" --concurrency "$c" --warmup 1000
	done

	# The same client against grpc_echo: gRPC C core alone, then with the handoff.
	for w in 0 16; do
		esock=$tmp/echo-$w.sock
		"${server_cpu[@]}" "$bin/grpc_echo" --socket "$esock" --workers "$w" \
			>"$tmp/echo-$w.log" 2>&1 </dev/null &
		echo_pids+=($!)
		server_pid=$!
		for _ in $(seq 100); do
			grep -q serving "$tmp/echo-$w.log" && break
			sleep 0.05
		done
		echo "\$ ${server_cpu[*]}${server_cpu[*]:+ }$bin/grpc_echo --socket $esock --workers $w   (pid $server_pid)"
		sock=$esock
		where="on its CQ thread"
		[ "$w" = 0 ] || where="through $w workers"
		run "grpc_echo: Version $where, concurrency 1" --method "$version" \
			--requests "$N1" --concurrency 1 --warmup 1000
		run "grpc_echo: Version $where, concurrency 16" --method "$version" \
			--requests "$N16" --concurrency 16 --warmup 1000
		bench_stop "$server_pid" grpc_echo
		echo_pids=()
	done
fi

echo "== summary"
printf '%-72s %6s %8s %8s %8s %8s\n' "run" "idle%" "p50 us" "p99 us" "max us" "calls/s"
for r in "${results[@]:1}"; do
	IFS='|' read -r label idle line <<<"$r"
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	if [ "$line" = "not benchmarked" ]; then
		printf '%-72s %6s %s\n' "$label" "$idle" "not benchmarked (not OK: see above)"
		continue
	fi
	printf '%-72s %6s %8s %8s %8s %8s\n' "$label" "$idle" "$(get p50_us)" "$(get p99_us)" \
		"$(get max_us)" "$(get calls_per_s)"
done
