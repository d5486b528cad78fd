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

# bench_await_ready PID LOG: waits up to 20 s for the suite PID (a `crisp
# run`) to log "ready: serving CRI" in LOG; exits with the log if it ends
# or takes longer.
bench_await_ready() {
	local pid=$1 log=$2
	for _ in $(seq 200); do
		grep -q "ready: serving CRI" "$log" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$(basename "$0"): crisp exited before it was ready:" >&2
			cat "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "$(basename "$0"): crisp not ready after 20 s:" >&2
	cat "$log" >&2
	exit 1
}

# bench_need_root WHY: exits unless run as root.
bench_need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "$(basename "$0"): run as root ($1)" >&2
		exit 1
	fi
}

# bench_need PROGRAM...: exits unless each PROGRAM is there: an absolute
# path must be executable, a bare name a command on PATH.
bench_need() {
	local p
	for p in "$@"; do
		case $p in
		/*) [ -x "$p" ] && continue ;;
		*) command -v "$p" >/dev/null && continue ;;
		esac
		echo "$(basename "$0"): $p is missing (scripts/install-deps.sh test)" >&2
		exit 1
	done
}

# The checkout's top folder.
bench_checkout() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

# bench_build_dir [DIR]: the build directory a script was given, absolute (a
# relative one is taken from the checkout); build-bench by default.
bench_build_dir() {
	local top dir
	top=$(bench_checkout)
	dir=${1:-$top/build-bench}
	case $dir in /*) ;; *) dir=$top/$dir ;; esac
	echo "$dir"
}

# bench_build BUILD FILE...: builds BUILD (scripts/build.sh, incremental)
# unless SKIP_BUILD=1, checks that each FILE (relative to BUILD) is there,
# and makes sure the crisp user exists.
bench_build() {
	local build=$1 top f
	shift
	top=$(bench_checkout)
	# Always (incrementally) built: stale daemons would be measured silently.
	if [ "${SKIP_BUILD:-0}" != 1 ]; then
		echo "== building into $build"
		bash "$top/scripts/build.sh" "$build" >/dev/null
	fi
	for f in "$@"; do
		if [ ! -e "$build/$f" ]; then
			echo "$(basename "$0"): $build/$f is missing" >&2
			exit 1
		fi
	done
	bash "$top/scripts/ensure-user.sh"
}

# bench_pods_prepare NAME BUILD: what a benchmark that runs pods on a whole
# suite needs first: root, runc, conmon, the CNI plugins, docker-registry
# and skopeo, BUILD built, and its temporary folder ($bench_tmp, after NAME).
bench_pods_prepare() {
	bench_need_root "pods, containers, bridges and iptables need it"
	bench_need /usr/lib/cni/loopback /usr/lib/cni/bridge /usr/lib/cni/host-local \
		/usr/lib/cni/portmap /usr/bin/docker-registry runc conmon skopeo
	bench_build "$2" bin/crisp python/api_pb2.py python/api_pb2_grpc.py
	bench_tmpdir "$1"
}

# bench_tmpdir NAME: a new folder /tmp/NAME-XXXXXX in $bench_tmp, mode 755
# (the crisp user must reach the suite's socket in it), removed on exit.
bench_tmpdir() {
	bench_tmp=$(mktemp -d "/tmp/$1-XXXXXX")
	chmod 755 "$bench_tmp"
	trap bench_remove_tmp EXIT
	trap 'exit 130' INT TERM
}

# Never through a mount a failure left (an overlay root, a pin): those are
# reported and stay, rather than their contents being deleted.
bench_remove_tmp() {
	local left
	left=$(awk -v t="$bench_tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	if [ -n "$left" ]; then
		echo "$(basename "$0"): mounts left under $bench_tmp, not removed:" >&2
		echo "$left" >&2
		rm -rf --one-file-system "$bench_tmp" 2>/dev/null || true
		return
	fi
	rm -rf "$bench_tmp"
}

# Idle and stolen shares of all CPUs over one second, from /proc/stat: the
# load average alone does not say whether other work runs right now, in
# this VM (idle) or elsewhere on its host (steal).
bench_idle_steal() {
	local a b
	a=$(awk '/^cpu / { print $5 + $6, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $5 + $6, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[3] - x[3];
		if (t <= 0) t = 1
		printf "%.0f%% idle, %.0f%% stolen", 100 * (y[1] - x[1]) / t, 100 * (y[2] - x[2]) / t }'
}

# Idle share of all CPUs over one second, as a number (per run: the load
# average counts the benchmark itself).
bench_idle_pct() {
	local a b
	a=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
		t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# bench_load: the load average, the idle and stolen shares over a second
# and the busiest processes.
bench_load() {
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(bench_idle_steal) over 1 s"
	echo "busiest processes (%CPU over their lifetime):"
	ps -eo pid,pcpu,etime,comm --sort=-pcpu 2>/dev/null | sed -n '2,6p' | sed 's/^/   /' || true
}

# bench_ver PACKAGE: its Debian version; bench_first CMD...: the first line
# CMD prints.  '?' when unknown.
bench_ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo '?'; }
bench_first() { "$@" 2>/dev/null | head -1 || echo '?'; }

# bench_machine BUILD WHAT [NOTE]: the machine lines every report starts
# with; WHAT says what lives on $bench_tmp's file system, NOTE follows the
# build line.
bench_machine() {
	local build=$1 btype
	btype=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
	echo "== machine"
	echo "nproc:   $(nproc)"
	echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "kernel:  $(uname -sr)"
	echo "cgroups: $(stat -f -c %T /sys/fs/cgroup) on /sys/fs/cgroup$(
		[ -d /sys/fs/cgroup/unified ] && echo ", cgroup2 on /sys/fs/cgroup/unified (hybrid)")"
	echo "fs:      $(df -T "$bench_tmp" | awk 'NR == 2 { print $2 " on " $1 }') ($2)"
	echo "build:   $build (${btype:-RelWithDebInfo, the CMakeLists default})${3:-}"
}
