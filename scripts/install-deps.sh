#!/usr/bin/env bash
# Installs every build and test dependency of ibsync from Debian 12 packages.
# Used by .ci/run, the Dockerfile's build stage, and developers:
#   sudo scripts/install-deps.sh          (build + tests)
#   sudo scripts/install-deps.sh --runtime (only what the ibsync binary needs)
#   sudo scripts/install-deps.sh --build   (what building needs, no test tools)
set -euo pipefail

runtime_pkgs=(ca-certificates libfyaml0 libgit2-1.5 libssh2-1 libcjson1 libcurl4 libssl3
              libpcre2-8-0 libmicrohttpd12 libsqlite3-0 libxml2 libnettle8 libjemalloc2)
build_pkgs=(build-essential cmake ninja-build pkg-config git
            libfyaml-dev libgit2-dev libssh2-1-dev libcjson-dev libcurl4-openssl-dev libssl-dev
            libpcre2-dev libmicrohttpd-dev libsqlite3-dev libxml2-dev nettle-dev libjemalloc-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev clang-format cppcheck python3 time procps
           openssh-server curl jq)

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

pkgs=("${runtime_pkgs[@]}")
if [ "${1:-}" = "--build" ]; then
    pkgs+=("${build_pkgs[@]}")
elif [ "${1:-}" != "--runtime" ]; then
    pkgs+=("${build_pkgs[@]}" "${test_pkgs[@]}")
    # The interop tests run the official AWS SDK for JavaScript: any Node.js
    # 18+ with npm will do; take Debian's only when none is installed.
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        pkgs+=(nodejs npm)
    fi
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#pkgs[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
