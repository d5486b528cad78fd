#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with clang and runs each for a
# while.  Usage: scripts/fuzz.sh [SECONDS_PER_FUZZER]   (default 60)
#
# Each fuzzer runs on a copy of its corpus in build-fuzz/fuzz-corpus/<name>,
# so the committed corpus grows only when you copy inputs back on purpose.
# A crash input is written to build-fuzz/fuzz-crashes/<name>/; commit it
# under tests/fuzz/corpus/<name>/ with the fix, so every test run replays it.
# Must run as root (installs clang).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS_PER_FUZZER]" >&2
	exit 2
	;;
esac
fuzzers=(ipc_recv proto_unpack config manifest)
build=$top/build-fuzz

missing=()
for p in clang libclang-rt-14-dev; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

CC=clang cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENABLE_FUZZ=ON \
	-DENABLE_SANDBOX=OFF -DBUILD_TESTING=ON >/dev/null
targets=()
for f in "${fuzzers[@]}"; do
	targets+=("fuzz_$f")
done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

# A UBSan report is a crash (STYLE.md §6); LeakSanitizer checks every input.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

status=0
summary=()
for f in "${fuzzers[@]}"; do
	corpus=$build/fuzz-corpus/$f
	crashes=$build/fuzz-crashes/$f
	log=$build/fuzz-logs/$f.log
	mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
	cp -n "$top/tests/fuzz/corpus/$f"/* "$corpus"/ 2>/dev/null || true

	echo "== fuzz_$f for ${seconds}s (log: $log)"
	set +e
	"$build/bin/fuzz_$f" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1
	rc=$?
	set -e

	# The last status line: "#N DONE cov: C ft: F corp: ... exec/s: E ..."
	line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
	runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
	execs=$(grep -oE '^stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
	cov=$(echo "$line" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || echo '?')
	if [ "$rc" = 0 ]; then
		summary+=("fuzz_$f: ok, $runs runs, $execs exec/s, cov $cov")
	else
		status=1
		input=$(grep -oE "(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+" "$log" | tail -n 1 || true)
		tail -n 40 "$log"
		summary+=("fuzz_$f: FAILED (exit $rc), input $crashes/${input:-?}")
		summary+=("  reproduce: $build/bin/fuzz_$f $crashes/${input:-?}")
		summary+=("  fix it, then commit the input as tests/fuzz/corpus/$f/${input:-<name>}")
	fi
done

echo
echo "== summary (${seconds}s per fuzzer)"
printf '%s\n' "${summary[@]}"
exit "$status"
