#!/usr/bin/env bash
# Creates the unprivileged system user crisp-criapi and crisp-streamd run as.
set -euo pipefail
user=${1:-crisp}
if ! getent passwd "$user" >/dev/null; then
	if command -v systemd-sysusers >/dev/null && [ -d /run/systemd/system ]; then
		systemd-sysusers "$(dirname "$0")/../packaging/sysusers.d/crisp.conf"
	else
		adduser --system --group --no-create-home --home /nonexistent "$user" >/dev/null 2>&1
	fi
fi
getent passwd "$user" >/dev/null
