#!/usr/bin/env bash
# Benchmarks imaged's image pulls and layer unpacking against a real suite,
# started as bench/run.sh starts one: `crisp run --config F --root R --state S`
# in a temporary folder, ready when the log says "ready: serving CRI".
#
# Usage (as root): bench/pull.sh [BUILD_DIR]     BUILD_DIR defaults to build-bench
# Builds first (scripts/build.sh, incremental) unless SKIP_BUILD=1.
# Environment: N, the counted runs of each measurement (default 5),
#              WARMUP, the rounds run first and not counted (default 1),
#              BENCH_TMP, where the temporary folder goes (default /tmp): the
#              suite's root, the registry's storage and every unpack are in
#              it, so its file system is the one measured (BENCH_TMP=/dev/shm
#              takes the disk out of the numbers).  Unpacking is mostly file
#              creation, whose cost on ext4 depends on where the directory
#              sits; pull_bench.py prints a probe of it first.
#              COOLDOWN, seconds to wait after each RemoveImage (default 0).
#              On ext4 without a journal, as on the development VMs, 65
#              keeps the inodes a removal frees from slowing the next
#              run's file creation (docs/PERFORMANCE.md).
#
# bench/pull_bench.py does the measuring: it builds a four-layer image (about
# 70 MB of tar, 6,000 generated files), serves it from Debian's docker-registry
# on 127.0.0.1 (tests/fixtures/registry.py) and times
#   - crisp's CRI PullImage, cold each time (RemoveImage between runs);
#   - `skopeo copy` of the same image to oci: and to dir: (no unpack);
#   - unpacking the same layer blobs with GNU tar and with crisp's own unpack
#     code (bench/unpack_bench), each followed by a syncfs per layer, as
#     imaged does.
# The measurements run round-robin, so a slow stretch of a shared VM hits
# them all alike, and each run shows how idle the machine was before it.
# The suite runs with proxies pointing at a closed port and only loopback
# exempt, so no request can leave the machine.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
build=$(bench_build_dir "${1:-}")
N=${N:-5}
WARMUP=${WARMUP:-1}
COOLDOWN=${COOLDOWN:-0}
BENCH_TMP=${BENCH_TMP:-/tmp}
python=/usr/bin/python3

bench_need_root "the suite's backends and the unpacking need it"
bench_build "$build" bin/crisp bin/unpack_bench python/api_pb2.py

tmp=$(mktemp -d "$BENCH_TMP/crisp-pull-bench-XXXXXX")
suite_pid=

# Only the suite is stopped here, by its pid (its supervisor stops its own
# daemons); pull_bench.py stops the registry it started.
cleanup() {
	local rc=$?
	if [ -n "$suite_pid" ]; then
		bench_stop "$suite_pid" crisp || rc=1
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '[crisp]\nlog_level = "info"\n' >"$tmp/crisp.conf"
start_cmd=("$build/bin/crisp" run --config "$tmp/crisp.conf" --root "$tmp/root" --state "$tmp/state")
proxy_env=(HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
	http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
	NO_PROXY="127.0.0.1,localhost,::1" no_proxy="127.0.0.1,localhost,::1")
env -u NOTIFY_SOCKET -u LISTEN_FDS "${proxy_env[@]}" "${start_cmd[@]}" \
	>"$tmp/crisp.log" 2>&1 </dev/null &
suite_pid=$!
bench_await_ready "$suite_pid" "$tmp/crisp.log"

echo "== machine"
echo "nproc:   $(nproc)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "kernel:  $(uname -sr)"
echo "memory:  $(free -m | awk '/^Mem:/ { print $2 " MiB total, " $4 " MiB free, " $7 " MiB available" }')"
read -r fs_dev fs_type < <(df --output=source,fstype "$tmp" | tail -1)
journal=
# ext4 without a journal allocates inodes differently (see COOLDOWN).
if [ "$fs_type" = ext4 ]; then
	journal=", journal: no"
	compgen -G "/proc/fs/jbd2/${fs_dev#/dev/}-*" >/dev/null && journal=", journal: yes"
fi
echo "fs:      $fs_type on $fs_dev$journal (under $BENCH_TMP: the suite's root, the registry and every unpack)"
btype=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2)
echo "build:   $build (${btype:-RelWithDebInfo, the CMakeLists default})"
echo "tools:   skopeo $(bench_ver skopeo), docker-registry $(bench_ver docker-registry), tar $(bench_ver tar), gzip $(bench_ver gzip), libarchive $(bench_ver libarchive13)"
echo "suite:   ${start_cmd[*]} (pid $suite_pid, log_level info)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min), $(bench_idle_pct)% idle over 1 s"
echo

bench_cmd=("$python" "$top/bench/pull_bench.py" --build "$build" --socket "$tmp/state/crisp.sock"
	--root "$tmp/root" --work "$tmp/work" --runs "$N" --warmup "$WARMUP" --cooldown "$COOLDOWN")
echo "\$ ${bench_cmd[*]}"
mkdir "$tmp/work"
env "${proxy_env[@]}" TMPDIR="$tmp" "${bench_cmd[@]}"
