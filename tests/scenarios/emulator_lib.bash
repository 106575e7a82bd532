# Helpers of the emulator scenario scripts (sourced, not run). Each script
# is run by ctest as: bash SCRIPT IBSYNC_BINARY EMULATOR_CLIENT_BINARY
#
#   start_emulator DATA [ARGS...]   starts `ibsync emulator` on 127.0.0.1:0
#                                   and waits for its "listening on" line;
#                                   sets EMU_PID and EMU_URL
#   stop_emulator                   SIGTERM, expects exit status 0
#   kill9_emulator                  SIGKILL, no questions asked
#   call [--sign K:S] METHOD TARGET [BODY] [--field NAME]
#                                   one request; sets STATUS ETYPE RID MS BODY
#   check DESCRIPTION COMMAND...    runs the test COMMAND, counts a pass or
#                                   fails the script with DESCRIPTION
#   finish                          prints "N passed, 0 failed"
set -euo pipefail

IBSYNC=${1:?usage: $0 IBSYNC_BINARY EMULATOR_CLIENT_BINARY}
CLIENT=${2:?usage: $0 IBSYNC_BINARY EMULATOR_CLIENT_BINARY}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ibsync-scenario.XXXXXX")
EMU_PID=
EMU_URL=
PASSED=0
STATUS= ETYPE= RID= MS= BODY=

cleanup() {
    if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2>/dev/null; then
        kill -9 "$EMU_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -s "$WORK/emu.err" ]; then
        sed 's/^/  emulator stderr: /' "$WORK/emu.err" >&2
    fi
    echo "$PASSED passed, 1 failed"
    exit 1
}

check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        echo "ok $PASSED - $what"
    else
        fail "$what (last answer: $STATUS $ETYPE $BODY)"
    fi
}

finish() {
    echo "$PASSED passed, 0 failed"
}

start_emulator() {
    local data=$1 line=
    shift
    rm -f "$WORK/port" "$WORK/emu.out"
    "$IBSYNC" emulator --listen 127.0.0.1:0 --data "$data" --port-file "$WORK/port" "$@" \
        >"$WORK/emu.out" 2>"$WORK/emu.err" &
    EMU_PID=$!
    for _ in $(seq 1 200); do
        line=$(grep -m1 '^ibsync emulator listening on ' "$WORK/emu.out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$EMU_PID" 2>/dev/null || fail "the emulator exited at start"
        sleep 0.05
    done
    [ -n "$line" ] || fail "the emulator did not report its address"
    EMU_URL=${line#ibsync emulator listening on }
    [ "$EMU_URL" = "http://127.0.0.1:$(cat "$WORK/port")" ] ||
        fail "port file $(cat "$WORK/port") does not match $EMU_URL"
}

stop_emulator() {
    local rc=0
    kill -TERM "$EMU_PID"
    wait "$EMU_PID" || rc=$?
    EMU_PID=
    [ "$rc" -eq 0 ] || fail "the emulator exited with $rc after SIGTERM"
}

kill9_emulator() {
    kill -9 "$EMU_PID"
    wait "$EMU_PID" 2>/dev/null || true
    EMU_PID=
}

call() {
    local out
    out=$("$CLIENT" --url "$EMU_URL" "${SIGN[@]}" call "$@" 2>"$WORK/client.err") ||
        fail "emulator_client failed: $(cat "$WORK/client.err")"
    read -r STATUS ETYPE RID MS <<<"$(head -n1 <<<"$out")"
    BODY=$(tail -n +2 <<<"$out")
}

# The JSON lines of a request log, analysed with python3 (one of the test
# dependencies): prints the value of EXPR for the list `lines`.
log_eval() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(eval(sys.argv[2]))
EOF
}

SIGN=()
