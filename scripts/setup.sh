#!/usr/bin/env bash
# Installs every Debian package laurel needs to build, test and benchmark, then builds.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
    build-essential cmake pkg-config clang-format
    libraft-dev libuv1-dev liblmdb-dev lmdb-utils libmsgpack-dev
    libwebsockets-dev libwebsockets-evlib-uv libjansson-dev libcmocka-dev libssl-dev
    python3 python3-websockets faketime nodejs
    curl openssl
    systemd  # systemd-analyze verify of deploy/systemd (tests/deploy)
    iproute2 nftables fiu-utils libfiu0 util-linux
    clang libclang-rt-14-dev
    chromium fonts-dejavu-core  # test_console: the console in a headless browser, its screenshots
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The OpenAPI validator of router/openapi.json (CTest: openapi_lint): @redocly/cli from npm,
# pinned, into .tools/ (not committed: .gitignore). It needs Node.js 20.19+ or 22.12+.
REDOCLY_VERSION=2.37.0
if ! grep -qs "\"version\": \"$REDOCLY_VERSION\"" .tools/node_modules/@redocly/cli/package.json; then
    if ! npm install --prefix .tools --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION"; then
        [ "${CI:-}" = true ] && exit 1
        echo "setup: @redocly/cli did not install: the openapi_lint test will be skipped" >&2
    fi
fi

if [ "${1:-}" != "--no-build" ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build build -j"$(nproc)"
fi
