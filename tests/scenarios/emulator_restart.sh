#!/bin/bash
# Persistence and shutdown: what the emulator acknowledged survives kill -9,
# a restart on the same --data serves it again, and SIGTERM lets a request
# in flight finish before the process exits.
. "$(dirname "$0")/emulator_lib.bash"

ACCOUNT_PREFIX=arn:aws:imagebuilder:us-east-1:123456789012
INFRA='{"name": "persist-infra", "instanceProfileName": "role", "clientToken": "persist-1",
        "tags": {"team": "core"}}'
DOC='name: p\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: s\n        action: ExecuteBash\n        inputs:\n          commands: [\"true\"]\n'
COMPONENT="{\"name\": \"persist-comp\", \"semanticVersion\": \"1.0.0\", \"platform\": \"Linux\",
            \"data\": \"$DOC\", \"clientToken\": \"persist-2\"}"

start_emulator "$WORK/data"
call PUT /CreateInfrastructureConfiguration "$INFRA" --field infrastructureConfigurationArn
check "create an infrastructure configuration" [ "$STATUS" = 200 ]
INFRA_ARN=$BODY
check "its ARN" [ "$INFRA_ARN" = "$ACCOUNT_PREFIX:infrastructure-configuration/persist-infra" ]
call PUT /CreateComponent "$COMPONENT" --field componentBuildVersionArn
check "create a component" [ "$STATUS" = 200 ]
COMP_ARN=$BODY
FIRST_URL=$EMU_URL

kill9_emulator
check "the killed emulator no longer answers" \
    bash -c "! '$CLIENT' --url '$FIRST_URL' call GET /_ibsync/health 2>/dev/null | grep -q '^200 '"

start_emulator "$WORK/data"
ENC_ARN=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$INFRA_ARN")
call GET "/GetInfrastructureConfiguration?infrastructureConfigurationArn=$ENC_ARN"
check "the infrastructure configuration is back after kill -9" [ "$STATUS" = 200 ]
check "with its tags" grep -q '"tags":{"team":"core"}' <<<"$BODY"
call GET "/GetComponent?componentBuildVersionArn=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$COMP_ARN")"
check "the component is back after kill -9" [ "$STATUS" = 200 ]
check "one infrastructure configuration, one component" \
    [ "$("$CLIENT" --url "$EMU_URL" count ListInfrastructureConfigurations infrastructureConfigurationSummaryList) $("$CLIENT" --url "$EMU_URL" count ListComponents componentVersionList)" = "1 1 1 1 1 1" ]
call PUT /CreateInfrastructureConfiguration "$INFRA" --field infrastructureConfigurationArn
check "the client token is remembered across the restart" [ "$STATUS $BODY" = "200 $INFRA_ARN" ]

# A slow call in flight when SIGTERM arrives is still answered.
call POST /_ibsync/faults '{"latencyMs": 1500}'
check "admin: 1.5 s latency" [ "$STATUS" = 200 ]
"$CLIENT" --url "$EMU_URL" call PUT /CreateInfrastructureConfiguration \
    '{"name": "late-infra", "instanceProfileName": "role", "clientToken": "late-1"}' \
    >"$WORK/late.out" 2>&1 &
LATE=$!
sleep 0.4
START=$(date +%s%N)
stop_emulator
wait "$LATE"
ELAPSED_MS=$((($(date +%s%N) - START) / 1000000))
check "the request in flight got its answer" grep -q '^200 ' "$WORK/late.out"
check "shutdown waited for it (${ELAPSED_MS} ms), not for the whole grace period" \
    [ "$ELAPSED_MS" -lt 5000 ]
check "the shutdown was logged" grep -q 'SIGTERM received, shutting down' "$WORK/emu.err"
check "the port file is removed on exit" [ ! -e "$WORK/port" ]

start_emulator "$WORK/data"
check "the region and account stay those of the database" \
    grep -q 'region us-east-1, account 123456789012' "$WORK/emu.err"
check "the late create is stored" \
    [ "$("$CLIENT" --url "$EMU_URL" count ListInfrastructureConfigurations infrastructureConfigurationSummaryList)" = "2 2 1" ]
stop_emulator

check "another region on the same data is refused" \
    bash -c "! '$IBSYNC' emulator --data '$WORK/data' --region eu-west-1 >/dev/null 2>'$WORK/region.err'"
check "with a message" grep -q 'ibsync: error' "$WORK/region.err"
finish
