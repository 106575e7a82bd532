#!/bin/bash
# Installs the usage tests' Node.js dependencies (exact versions from
# package-lock.json) into tests/usage/node_modules with `npm ci`, unless
# they are already installed from the current lock file. The usage tests
# call it themselves; it is safe to run concurrently.
set -euo pipefail
cd "$(dirname "$0")"
exec 9>"${TMPDIR:-/tmp}/ibsync-usage-npm.lock"
flock 9
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
