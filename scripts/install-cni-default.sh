#!/usr/bin/env bash
# Installs crisp's default pod network (packaging/cni/10-crisp-bridge.conflist:
# a bridge with host-local addresses from 10.89.0.0/16 and host ports, no
# masquerading to the outside) into the CNI conf dir, only when that dir has
# no network config yet: an existing CNI setup is never touched.
# Usage: scripts/install-cni-default.sh [CONF_DIR]   (default /etc/cni/net.d)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/etc/cni/net.d}

mkdir -p "$dir"
shopt -s nullglob
existing=("$dir"/*.conf "$dir"/*.conflist "$dir"/*.json)
if [ "${#existing[@]}" -gt 0 ]; then
	echo "install-cni-default: $dir has a network config already; leaving it alone"
	exit 0
fi
install -m 0644 "$top/packaging/cni/10-crisp-bridge.conflist" "$dir/10-crisp-bridge.conflist"
echo "install-cni-default: installed $dir/10-crisp-bridge.conflist"
