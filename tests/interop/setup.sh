#!/bin/bash
# Installs the interop test's Node.js dependencies (exact versions from
# package-lock.json) into tests/interop/node_modules.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
