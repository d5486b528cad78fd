# bench/lib.sh - what the benchmark scripts share.  Source it; it expects
# `set -euo pipefail` and defines functions only.

# bench_stop PID NAME: SIGTERM to a process the calling script started (a
# child of its shell), then wait up to 30 s for it to end.
bench_stop() {
	local pid=$1 name=$2
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid"
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$(basename "$0"): $name ($pid) did not stop on SIGTERM" >&2
		return 1
	fi
	wait "$pid" 2>/dev/null || true
}
