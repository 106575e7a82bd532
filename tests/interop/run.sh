#!/bin/bash
# ctest driver of interop/sigv4: signs cases.json with the AWS SDK's signer
# (sign.js) and compares ibsync's signatures with its output.
# Usage: run.sh SIGV4_INTEROP_BINARY NODE
set -euo pipefail
bin=$1
node=$2
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -d "$here/node_modules/@smithy/signature-v4" ] ||
    [ ! -d "$here/node_modules/@aws-crypto/sha256-js" ]; then
    echo "interop/sigv4: $here/node_modules is missing or incomplete;" \
        "run tests/interop/setup.sh (npm ci) first" >&2
    exit 1
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$node" "$here/sign.js" "$here/cases.json" >"$out"
"$bin" "$here/cases.json" "$out"
