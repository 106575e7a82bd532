#!/bin/bash
# Throughput of `ibsync emulator` on loopback: requests per second for
# GetComponent (a read) and CreateComponent (a committed, fsync'ed write),
# with no injected latency, from N concurrent keep-alive connections.
#
# Usage: bench/emulator.sh [BUILD_DIR] [options]
#   BUILD_DIR          a configured and built build directory (default: build);
#                      uses BUILD_DIR/cmd/ibsync and BUILD_DIR/tests/emulator_client
#                      (the scenario tests' client: ninja ibsync emulator_client)
#   --clients N        concurrent connections (default 8)
#   --requests N       requests per connection and operation (default 500)
#   --threads N        the emulator's worker threads (default 4)
#   --sign             sign every request with SigV4 and have the emulator
#                      verify it (--credentials), to see what checking costs
#
# Prints one line per operation (requests, failures, seconds, requests/s).
# It is a measurement, not a test: there are no thresholds. The data
# directory is a fresh temporary one, removed afterwards.
set -euo pipefail

build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    build=$1
    shift
fi
clients=8
requests=500
threads=4
sign=()
server_sign=()
checked="not checked"
while [ $# -gt 0 ]; do
    case $1 in
    --clients) clients=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --sign)
        sign=(--sign AKIDBENCH:benchsecret)
        server_sign=(--credentials AKIDBENCH:benchsecret)
        checked="checked"
        shift ;;
    *) echo "usage: $0 [BUILD_DIR] [--clients N] [--requests N] [--threads N] [--sign]" >&2
       exit 2 ;;
    esac
done
ibsync=$build/cmd/ibsync
client=$build/tests/emulator_client
for f in "$ibsync" "$client"; do
    [ -x "$f" ] || { echo "bench: $f not found; build it first (ninja -C $build ibsync emulator_client)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ibsync-bench.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$ibsync" emulator --listen 127.0.0.1:0 --data "$work/data" --threads "$threads" \
    "${server_sign[@]}" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do
    grep -q 'listening on' "$work/out" && break
    sleep 0.05
done
url=$(sed -n 's/^ibsync emulator listening on //p' "$work/out")
[ -n "$url" ] || { cat "$work/err" >&2; exit 1; }

echo "ibsync emulator at $url: $clients connections x $requests requests, $threads threads," \
    "signatures $checked"
doc='name: bench\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: s\n        action: ExecuteBash\n        inputs:\n          commands: [\"true\"]\n'
arn=$("$client" --url "$url" "${sign[@]}" call PUT /CreateComponent \
    "{\"name\": \"bench-target\", \"semanticVersion\": \"1.0.0\", \"platform\": \"Linux\", \"data\": \"$doc\", \"clientToken\": \"bench-target\"}" \
    --field componentBuildVersionArn | sed -n 2p)
printf '%-16s ' GetComponent
"$client" --url "$url" "${sign[@]}" load --clients "$clients" --requests "$requests" --mode get --arn "$arn"
printf '%-16s ' CreateComponent
"$client" --url "$url" "${sign[@]}" load --clients "$clients" --requests "$requests" --mode create --prefix bench
