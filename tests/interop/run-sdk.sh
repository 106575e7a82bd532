#!/bin/bash
# ctest driver of interop/sdk: runs emulator_sdk.test.js (node:test) with the
# official AWS SDK for JavaScript against `ibsync emulator`.
# Usage: run-sdk.sh IBSYNC_BINARY NODE
set -euo pipefail
bin=$1
node=$2
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -f "$here/node_modules/@aws-sdk/client-imagebuilder/package.json" ]; then
    echo "interop/sdk: $here/node_modules has no @aws-sdk/client-imagebuilder;" \
        "run tests/interop/setup.sh (npm ci) first" >&2
    exit 1
fi
major=$("$node" -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "interop/sdk: @aws-sdk/client-imagebuilder needs Node.js 20 or later, not $("$node" --version)" >&2
    exit 1
fi
cd "$here"
IBSYNC_BIN=$bin exec "$node" --test emulator_sdk.test.js
