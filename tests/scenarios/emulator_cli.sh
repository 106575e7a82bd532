#!/bin/bash
# The `ibsync emulator` command line: usage errors exit 129 with a message,
# --help lists every flag, runtime failures exit 1.
. "$(dirname "$0")/emulator_lib.bash"

usage_error() {
    local want=$1 rc=0
    shift
    "$IBSYNC" emulator "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 129 ] && grep -qF -- "$want" "$WORK/err" && grep -q '^usage: ibsync emulator' "$WORK/err"
}

check "--data is required" usage_error "--data DIR is required"
check "unknown options" usage_error "unknown option '--bogus'" --data "$WORK/d" --bogus
check "options need values" usage_error "option '--latency-ms' needs a value" --data "$WORK/d" --latency-ms
check "rates are probabilities" \
    usage_error "--throttle-rate: '1.5' is not a probability between 0 and 1" --data "$WORK/d" --throttle-rate 1.5
check "numbers are numbers" usage_error "--error-rate: 'half' is not a number" --data "$WORK/d" --error-rate half
check "latency is a whole number" usage_error "--latency-ms: '-5' is not a whole number" --data "$WORK/d" --latency-ms -5
check "credentials are KEY:SECRET" \
    usage_error "--credentials: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY" --data "$WORK/d" --credentials nocolon
check "no positional arguments" usage_error "unexpected argument 'extra'" --data "$WORK/d" extra

"$IBSYNC" emulator --help >"$WORK/help"
for flag in --data --listen --port-file --region --account --credentials --image-build-ms --threads \
    --max-body --request-log --latency-ms --throttle-rate --error-rate --drop-rate --rate-limit --seed; do
    check "--help lists $flag" grep -q -- "^  $flag " "$WORK/help"
done
check "--help names the admin endpoint" grep -q '/_ibsync/faults' "$WORK/help"
check "ibsync --help lists the command" bash -c "'$IBSYNC' --help | grep -q '^  emulator '"

check "a bad listen address fails with exit 1" \
    bash -c "'$IBSYNC' emulator --data '$WORK/d' --listen nonsense 2>'$WORK/err'; [ \$? = 1 ]"
check "with a message" grep -q "ibsync: error: listen address 'nonsense'" "$WORK/err"
start_emulator "$WORK/d"
PORT=${EMU_URL##*:}
check "a port in use fails with exit 1" \
    bash -c "'$IBSYNC' emulator --data '$WORK/e' --listen 127.0.0.1:$PORT 2>'$WORK/err'; [ \$? = 1 ]"
check "saying so" grep -q "cannot listen on 127.0.0.1:$PORT" "$WORK/err"
kill -INT "$EMU_PID"
RC=0
wait "$EMU_PID" || RC=$?
EMU_PID=
check "SIGINT stops the emulator with exit 0" [ "$RC" = 0 ]
check "and says so" grep -q 'SIGINT received' "$WORK/emu.err"
finish
