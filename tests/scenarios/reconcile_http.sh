#!/usr/bin/env bash
# Reconciler scenarios through the AWS client against `ibsync emulator` over
# HTTP with signatures checked: apply converges under 10% injected throttling
# and 10% dropped responses with no duplicates; an apply killed with SIGKILL
# mid-way is finished by running it again; a second concurrent apply fails
# fast on the stack lock. Every check of the account goes through the API.
# Usage: reconcile_http.sh IBSYNC SOURCE_DIR
set -u
ibsync=$1
src=$2
tmp=$(mktemp -d)
emu_pid=
cleanup() {
    [ -n "$emu_pid" ] && { kill -9 "$emu_pid"; wait "$emu_pid"; } 2>/dev/null
    jobs -p | xargs -r kill -9 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "${KEEP_TMP:-}" ] && trap - EXIT
. "$(dirname "${BASH_SOURCE[0]}")/check.bash"

export AWS_ACCESS_KEY_ID=AKIDSCENARIO AWS_SECRET_ACCESS_KEY=scenario-secret
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# start_emulator DATA_DIR [fault flags...]: sets $endpoint and $emu_pid
start_emulator() {
    local data=$1
    shift
    rm -f "$tmp/port"
    "$ibsync" emulator --listen 127.0.0.1:0 --data "$data" --port-file "$tmp/port" \
        --credentials "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" --request-log "$tmp/requests.log" \
        "$@" >"$tmp/emulator.out" 2>&1 &
    emu_pid=$!
    for _ in $(seq 1 100); do
        [ -s "$tmp/port" ] && break
        sleep 0.05
    done
    endpoint="http://127.0.0.1:$(cat "$tmp/port")"
}
stop_emulator() {
    kill "$emu_pid" 2>/dev/null
    wait "$emu_pid" 2>/dev/null
    emu_pid=
}
api() { "$ibsync" api --endpoint-url "$endpoint" --region us-east-1 "$@"; }
q() {
    api "$1" "$2" --all | python3 -c "import json,sys; items=json.load(sys.stdin); print($3)"
}
run() { "$ibsync" "$@" --endpoint-url "$endpoint" --state-dir "$tmp/state"; }
versions() {
    q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["name"]+"@"+i["version"] for i in items))'
}

# 1. Throttling and dropped responses at 10% each: apply converges, nothing
#    is created twice, the re-plan is empty.
start_emulator "$tmp/acct1" --throttle-rate 0.1 --drop-rate 0.1 --seed 42
out=$(run apply --auto-approve --max-attempts 8 "$src/examples/linux-golden-ami" 2>&1)
expect_status faults-apply 0 $?
expect_match faults-apply "$out" "Apply complete: 8 done, 0 failed, 0 not run"
grep -q '"fault":"throttle"' "$tmp/requests.log" && ok || fail "no throttling was injected"
grep -q '"fault":"drop"' "$tmp/requests.log" && ok || fail "no response was dropped"
expect_eq faults-components "harden-ssh@1.2.0 install-nginx@1.0.0" "$(versions)"
expect_eq faults-recipes 1 "$(q ListImageRecipes '{"owner":"Self"}' 'len(items)')"
expect_eq faults-pipelines 1 "$(q ListImagePipelines '{}' 'len(items)')"
out=$(run plan --max-attempts 8 --detailed-exitcode "$src/examples/linux-golden-ami" 2>&1)
expect_status faults-replan 0 $?
stop_emulator

# 1b. A warm plan of the unchanged stack costs the list pages alone (eight
#     kinds, one page each); a corrupt cache only makes it slower.
start_emulator "$tmp/acct1"
: >"$tmp/requests.log"
out=$(run plan --detailed-exitcode "$src/examples/linux-golden-ami" 2>&1)
expect_status warm-plan 0 $?
expect_eq warm-plan-calls 8 "$(wc -l <"$tmp/requests.log")"
for f in "$tmp"/state/cache/*.json; do echo '{"format": 1, "entries": [garbage' >"$f"; done
: >"$tmp/requests.log"
out=$(run plan --detailed-exitcode "$src/examples/linux-golden-ami" 2>&1)
expect_status corrupt-cache-plan 0 $?
expect_match corrupt-cache-plan "$out" "No changes."
expect_match corrupt-cache-plan "$out" "warning:"
[ "$(wc -l <"$tmp/requests.log")" -gt 8 ] && ok || fail "corrupt cache: no extra calls"
: >"$tmp/requests.log"
out=$(run plan --refresh=full --detailed-exitcode "$src/examples/linux-golden-ami" 2>&1)
expect_status refresh-full 0 $?
[ "$(wc -l <"$tmp/requests.log")" -gt 8 ] && ok || fail "--refresh=full read nothing more"
stop_emulator

# 2. SIGKILL in the middle of an apply (300 ms per call, one at a time),
#    then the same apply again: it finishes, re-sending the interrupted
#    action with its first token, with no duplicates.
start_emulator "$tmp/acct2" --latency-ms 300
rm -rf "$tmp/state"
"$ibsync" apply --auto-approve --parallelism 1 --endpoint-url "$endpoint" --state-dir "$tmp/state" \
    "$src/examples/linux-golden-ami" >"$tmp/killed.out" 2>&1 &
apply_pid=$!
for _ in $(seq 1 100); do
    grep -q "done in" "$tmp/killed.out" 2>/dev/null && break
    sleep 0.05
done
sleep 0.4
# Kill the apply and the emulator together: the call in flight (parked by
# the injected latency) is never executed, so the resumed apply must send
# it again, with the same clientToken.
kill -9 "$apply_pid" "$emu_pid"
wait "$apply_pid" "$emu_pid" 2>/dev/null
start_emulator "$tmp/acct2"
started=$(grep -c "\.\.\.$" "$tmp/killed.out")
finished=$(grep -c "done in" "$tmp/killed.out")
[ "$finished" -ge 1 ] && [ "$finished" -lt 8 ] && ok || fail "kill: $finished of 8 actions finished before the kill"
journal=$(ls "$tmp"/state/journal/*.jsonl 2>/dev/null | head -1)
[ -n "$journal" ] && ok || fail "kill: no journal left behind"
grep -q '"event":"start"' "$journal" && ok || fail "kill: journal has no start records"
out=$(run apply --auto-approve "$src/examples/linux-golden-ami" 2>&1)
expect_status resume 0 $?
expect_match resume "$out" "Apply complete"
expect_eq resume-components "harden-ssh@1.2.0 install-nginx@1.0.0" "$(versions)"
expect_eq resume-recipes 1 "$(q ListImageRecipes '{"owner":"Self"}' 'len(items)')"
expect_eq resume-infra 1 "$(q ListInfrastructureConfigurations '{}' 'len(items)')"
expect_eq resume-pipelines 1 "$(q ListImagePipelines '{}' 'len(items)')"
out=$(run plan --detailed-exitcode "$src/examples/linux-golden-ami" 2>&1)
expect_status resume-replan 0 $?
ls "$tmp"/state/journal/archive/*.jsonl >/dev/null 2>&1 && ok || fail "resume: journal not archived"
# The action in flight at the kill was re-sent with the token it was first
# sent with (both runs' records are in the archived journal).
resent=$(cat "$tmp"/state/journal/archive/*.jsonl | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin if l.strip()]
first = recs[0]["plan"]
done = {r["action"] for r in recs if r["plan"] == first and r["event"] == "done"}
open_ = {r["action"]: r["token"] for r in recs if r["plan"] == first and r["event"] == "start" and r["action"] not in done}
later = {r["action"]: r["token"] for r in recs if r["plan"] != first and r["event"] == "start"}
print(sum(1 for a, t in open_.items() if later.get(a) == t), len(open_))')
expect_eq resume-same-token "1 1" "$resent"
echo "kill test: $started started, $finished finished before SIGKILL"

# 3. Two applies of one stack at once: the second fails fast on the lock.
run destroy --auto-approve "$src/examples/linux-golden-ami" >/dev/null 2>&1
stop_emulator
start_emulator "$tmp/acct2" --latency-ms 300
"$ibsync" apply --auto-approve --parallelism 1 --endpoint-url "$endpoint" --state-dir "$tmp/state" \
    "$src/examples/linux-golden-ami" >"$tmp/first.out" 2>&1 &
first=$!
for _ in $(seq 1 100); do
    grep -q "\.\.\.$" "$tmp/first.out" 2>/dev/null && break
    sleep 0.05
done
start=$(date +%s%N)
out=$(run apply --auto-approve "$src/examples/linux-golden-ami" 2>&1)
status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_status lock 1 $status
expect_match lock "$out" "is locked by pid $first"
expect_match lock "$out" "(ibsync apply)"
[ "$elapsed_ms" -lt 5000 ] && ok || fail "lock: the second apply waited ${elapsed_ms} ms"
wait "$first"
st=$?; expect_status lock-first 0 $st; [ "$st" = 0 ] || tail -20 "$tmp/first.out"

# 4. SIGTERM stops the scheduling of new actions; the apply exits cleanly
#    (the action in flight finishes) and a re-run completes.
run destroy --auto-approve "$src/examples/linux-golden-ami" >/dev/null 2>&1
"$ibsync" apply --auto-approve --parallelism 1 --endpoint-url "$endpoint" --state-dir "$tmp/state" \
    "$src/examples/linux-golden-ami" >"$tmp/term.out" 2>&1 &
term_pid=$!
for _ in $(seq 1 100); do
    grep -q "done in" "$tmp/term.out" 2>/dev/null && break
    sleep 0.05
done
kill -TERM "$term_pid"
wait "$term_pid"
expect_status sigterm 1 $?
out=$(cat "$tmp/term.out")
expect_match sigterm "$out" "interrupted; run the same command again to finish"
expect_match sigterm "$out" "Apply interrupted:"
[ "$(grep -c '\.\.\.$' "$tmp/term.out")" = "$(grep -c 'done in' "$tmp/term.out")" ] && ok ||
    fail "sigterm: an action started but did not finish"
out=$(run apply --auto-approve "$src/examples/linux-golden-ami" 2>&1)
expect_status sigterm-rerun 0 $?
expect_eq sigterm-components "harden-ssh@1.2.0 install-nginx@1.0.0" "$(versions)"
stop_emulator

check_summary
