#!/usr/bin/env bash
# Fails when a C file differs from what .clang-format makes of it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h')
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
