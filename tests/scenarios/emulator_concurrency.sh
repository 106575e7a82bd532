#!/bin/bash
# Concurrent clients: 8 clients x 500 requests on keep-alive connections
# (creates, replays of the same create with the same clientToken, gets,
# lists, tag writes), then the result is checked through List: every
# create is there exactly once, nothing lost, nothing duplicated, and the
# request log has one line per request.
. "$(dirname "$0")/emulator_lib.bash"

CLIENTS=8
REQUESTS=500
LOG=$WORK/requests.log

start_emulator "$WORK/data" --threads 4 --request-log "$LOG"
"$CLIENT" --url "$EMU_URL" load --clients $CLIENTS --requests $REQUESTS --mode mixed \
    --prefix conc --strict >"$WORK/load.out" 2>"$WORK/load.err" || true
cat "$WORK/load.out"
check "every request succeeded ($(head -c 300 "$WORK/load.err"))" \
    grep -q "^requests=$((CLIENTS * REQUESTS)) ok=$((CLIENTS * REQUESTS)) failed=0 " "$WORK/load.out"

EXPECTED=$((CLIENTS * REQUESTS / 5))
COUNT=$("$CLIENT" --url "$EMU_URL" count ListInfrastructureConfigurations \
    infrastructureConfigurationSummaryList)
read -r TOTAL UNIQUE PAGES <<<"$COUNT"
check "List shows $EXPECTED resources (got $TOTAL)" [ "$TOTAL" = "$EXPECTED" ]
check "no duplicates ($UNIQUE distinct ARNs)" [ "$UNIQUE" = "$EXPECTED" ]
check "in $(((EXPECTED + 24) / 25)) pages" [ "$PAGES" = $(((EXPECTED + 24) / 25)) ]
check "the log has one line per request" \
    [ "$(log_eval "$LOG" 'len(lines)')" = $((CLIENTS * REQUESTS + PAGES)) ]
check "all answered 200 without faults" \
    [ "$(log_eval "$LOG" 'sorted(set((l["status"], l["fault"]) for l in lines))')" = "[(200, 'none')]" ]
check "request ids are unique" \
    [ "$(log_eval "$LOG" 'len(set(l["requestId"] for l in lines)) == len(lines)')" = True ]
check "each client's tags landed" \
    bash -c "'$CLIENT' --url '$EMU_URL' call GET '/tags/arn%3Aaws%3Aimagebuilder%3Aus-east-1%3A123456789012%3Ainfrastructure-configuration%2Fconc-7-99' | grep -q '\"step\":\"499\"'"
stop_emulator
finish
