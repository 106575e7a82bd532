#!/bin/bash
# Fault injection: throttling and server errors show up in the answers and
# in the request log with the right statuses; a seed makes them
# reproducible; the admin endpoint changes them at run time (latency,
# rates, rate limit) and rejects bad settings.
. "$(dirname "$0")/emulator_lib.bash"

CALLS=60

# run_calls LOG: CALLS sequential ListComponents calls; prints the statuses.
run_calls() {
    local statuses=()
    for _ in $(seq 1 $CALLS); do
        call POST /ListComponents '{}'
        statuses+=("$STATUS:$ETYPE")
    done
    echo "${statuses[*]}"
}

LOG1=$WORK/one.log
start_emulator "$WORK/one" --throttle-rate 0.25 --error-rate 0.25 --seed 1234 --request-log "$LOG1"
FIRST=$(run_calls)
stop_emulator
check "throttled calls answer 429 CallRateLimitExceededException" \
    grep -q '429:CallRateLimitExceededException' <<<"$FIRST"
check "injected errors answer 500 ServiceException or 503 ServiceUnavailableException" \
    grep -Eq '500:ServiceException|503:ServiceUnavailableException' <<<"$FIRST"
check "other calls go through" grep -q '200:-' <<<"$FIRST"
check "nothing else" \
    [ -z "$(tr ' ' '\n' <<<"$FIRST" | grep -Ev '^(429:CallRateLimitExceededException|500:ServiceException|503:ServiceUnavailableException|200:-)$')" ]
check "the log has one line per call" [ "$(log_eval "$LOG1" 'len(lines)')" = $CALLS ]
check "the log's statuses are the answers, in order" \
    [ "$(log_eval "$LOG1" '" ".join(str(l["status"]) for l in lines)')" = \
      "$(tr ' ' '\n' <<<"$FIRST" | cut -d: -f1 | tr '\n' ' ' | sed 's/ $//')" ]
check "each fault has its status in the log" \
    [ "$(log_eval "$LOG1" 'sorted(set((l["fault"], l["status"]) for l in lines))')" = \
      "[('error', 500), ('error', 503), ('none', 200), ('throttle', 429)]" ]
check "the log names the operation and a request id" \
    [ "$(log_eval "$LOG1" 'all(l["operation"] == "ListComponents" and len(l["requestId"]) == 36 and l["latency_ms"] >= 0 and l["time"].endswith("Z") for l in lines)')" = True ]

LOG2=$WORK/two.log
start_emulator "$WORK/two" --throttle-rate 0.25 --error-rate 0.25 --seed 1234 --request-log "$LOG2"
SECOND=$(run_calls)
check "the same seed and order of calls give the same faults" [ "$FIRST" = "$SECOND" ]

# The admin endpoint, at run time.
call GET /_ibsync/faults
check "GET /_ibsync/faults shows the settings" \
    [ "$BODY" = '{"latencyMs":0,"throttleRate":0.25,"errorRate":0.25,"dropRate":0.0,"rateLimit":0.0,"seed":1234}' ]
check "admin answers carry a request id" grep -Eq '^[0-9a-f-]{36}$' <<<"$RID"
call POST /_ibsync/faults '{"throttleRate": 1}'
check "POST changes one setting" [ "$STATUS" = 200 ]
call POST /ListComponents '{}'
check "every call is throttled now" [ "$STATUS $ETYPE" = "429 CallRateLimitExceededException" ]
call POST /_ibsync/faults '{"throttleRate": 2}'
check "an out-of-range setting is refused" [ "$STATUS $ETYPE" = "400 ValidationError" ]
check "naming it" grep -q 'throttleRate must be between 0 and 1, not 2' <<<"$BODY"
call POST /_ibsync/faults '{"errorRate": 0, "latencyMs": "fast"}'
check "a wrong type is refused" grep -q 'latencyMs must be an integer' <<<"$BODY"
call POST /_ibsync/faults 'not json'
check "so is a body that is not JSON" [ "$STATUS" = 400 ]
call GET /_ibsync/faults --field throttleRate
check "a refused change changes nothing" [ "$BODY" = 1.0 ]
call POST /_ibsync/faults '{"throttleRate": 0, "errorRate": 0, "latencyMs": 400}'
call POST /ListComponents '{}'
check "latencyMs delays calls (${MS} ms)" [ "$STATUS" = 200 -a "$MS" -ge 400 ]
call GET /_ibsync/health
check "the admin endpoint is not delayed (${MS} ms)" [ "$STATUS" = 200 -a "$MS" -lt 400 ]

call POST /_ibsync/faults '{"latencyMs": 0, "rateLimit": 5}'
: >"$LOG2"
"$CLIENT" --url "$EMU_URL" load --clients 1 --requests 20 --mode mixed --prefix rl \
    >"$WORK/rl.out" 2>/dev/null || true
read -r OK FAILED SECONDS <<<"$(sed -E 's/.*ok=([0-9]+) failed=([0-9]+) seconds=([0-9.]+).*/\1 \2 \3/' "$WORK/rl.out")"
# A full bucket (5) plus what it refills while the burst runs.
MAX_OK=$(awk -v s="$SECONDS" 'BEGIN { printf "%d", 5 + 5 * s + 1 }')
check "a rate limit of 5/s lets a burst of 5 through, plus the refill (ok=$OK, max $MAX_OK)" \
    [ "$OK" -ge 5 -a "$OK" -le "$MAX_OK" ]
check "and throttles the rest with 429 (failed=$FAILED)" [ "$FAILED" -eq $((20 - OK)) ]
check "logged as throttle" [ "$(log_eval "$LOG2" 'sum(1 for l in lines if l["fault"] == "throttle" and l["status"] == 429)')" = "$FAILED" ]
call POST /_ibsync/faults '{"rateLimit": 0}'
call POST /ListComponents '{}'
check "without the limit calls go through again" [ "$STATUS" = 200 ]
call GET /_ibsync/nothing
check "unknown admin resources are 404" [ "$STATUS" = 404 ]
call DELETE /_ibsync/faults
check "wrong admin methods are 405" [ "$STATUS" = 405 ]
stop_emulator
finish
