#!/usr/bin/env bash
# Installs every Debian 12 package crisp needs to build, run and test.
# Usage: scripts/install-deps.sh [run|test]   (default: test, which is a superset)
set -euo pipefail

mode=${1:-test}

build_pkgs=(
	build-essential cmake pkg-config git
	protobuf-c-compiler libprotobuf-c-dev
	libgrpc-dev
	libcap-ng-dev libseccomp-dev libsqlite3-dev
	libnl-3-dev libnl-route-3-dev
	libcurl4-openssl-dev libarchive-dev libssl-dev libjansson-dev zlib1g-dev
	libsystemd-dev libmicrohttpd-dev libinih-dev
)
run_pkgs=(
	runc crun conmon containernetworking-plugins iproute2 iptables adduser
)
test_pkgs=(
	libcmocka-dev clang-format
	python3-grpcio python3-grpc-tools python3-pytest python3-protobuf
	docker-registry skopeo busybox-static zstd apache2-utils openssl
)

pkgs=("${build_pkgs[@]}" "${run_pkgs[@]}")
if [ "$mode" = test ]; then
	pkgs+=("${test_pkgs[@]}")
	# The streaming tests drive a real kubectl: Debian's, unless one is installed already
	# (another vendor's package of it would conflict).
	if ! command -v kubectl >/dev/null; then
		pkgs+=(kubernetes-client)
	fi
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
