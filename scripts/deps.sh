#!/usr/bin/env bash
# Installs the Debian packages CrabCache needs to build, test and benchmark.
# Idempotent: packages already present are not asked for again, so a second run
# costs one dpkg query. Needs root (apt-get); CI and `make test` call it.
set -euo pipefail

PKGS=(
    cmake make gcc clang pkg-config
    libuv1-dev libxxhash-dev libjemalloc-dev libssl-dev libmicrohttpd-dev
    libraft-dev libcmocka-dev libclang-rt-14-dev
    python3 python3-pytest python3-redis
    redis-server redis-tools memcached
    zstd xz-utils gzip
    prometheus chromium libsystemd-dev
    dpkg-dev debhelper fakeroot
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root (or: sudo $0)" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The redis-server and prometheus packages start system services where
# systemd runs. Tests and benchmarks start their own on free ports, so those
# services are left alone: on a user's machine they may be the user's. Only a
# throw-away CI machine (CI=true, as CI systems set it) stops them, to free
# the CPU and the default ports 6379 and 9090.
if [ "${CI:-}" = "true" ] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop redis-server >/dev/null 2>&1 || true
    systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
