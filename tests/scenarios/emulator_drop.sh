#!/bin/bash
# A dropped answer (--drop-rate 1) still committed its write: the client
# gets no response, yet after kill -9 and a restart with drop-rate 0 the
# same clientToken returns the original ARN and there is exactly one
# resource. Then the same at run time through the admin endpoint.
. "$(dirname "$0")/emulator_lib.bash"

ARN=arn:aws:imagebuilder:us-east-1:123456789012:infrastructure-configuration/dropped-infra
CREATE='{"name": "dropped-infra", "instanceProfileName": "role", "clientToken": "drop-token"}'
LOG=$WORK/requests.log

start_emulator "$WORK/data" --drop-rate 1 --request-log "$LOG"
call PUT /CreateInfrastructureConfiguration "$CREATE"
check "no answer to the create" [ "$STATUS" = 0 ]
check "the client saw the connection close" grep -Eqi 'empty reply|reset|closed' "$WORK/client.err"
check "the log records the executed call as dropped" \
    [ "$(log_eval "$LOG" '[(l["operation"], l["status"], l["fault"]) for l in lines]')" = \
      "[('CreateInfrastructureConfiguration', 200, 'drop')]" ]
kill9_emulator

start_emulator "$WORK/data" --drop-rate 0 --request-log "$LOG"
call PUT /CreateInfrastructureConfiguration "$CREATE" --field infrastructureConfigurationArn
check "the retry with the same clientToken gets the original ARN" [ "$STATUS $BODY" = "200 $ARN" ]
check "exactly one resource" \
    [ "$("$CLIENT" --url "$EMU_URL" count ListInfrastructureConfigurations infrastructureConfigurationSummaryList)" = "1 1 1" ]

# At run time: drop every answer, then none.
call POST /_ibsync/faults '{"dropRate": 1}'
check "admin: drop every answer" [ "$STATUS" = 200 ]
call PUT /CreateDistributionConfiguration \
    '{"name": "dropped-dist", "distributions": [{"region": "us-east-1"}], "clientToken": "dd"}'
check "no answer to the second create" [ "$STATUS" = 0 ]
call GET /_ibsync/health
check "the admin endpoint is never dropped" [ "$STATUS" = 200 ]
call POST /_ibsync/faults '{"dropRate": 0}'
call PUT /CreateDistributionConfiguration \
    '{"name": "dropped-dist", "distributions": [{"region": "us-east-1"}], "clientToken": "dd"}' \
    --field distributionConfigurationArn
check "its retry gets the ARN of the committed create" \
    [ "$STATUS $BODY" = "200 ${ARN%infrastructure-configuration/dropped-infra}distribution-configuration/dropped-dist" ]
check "exactly one distribution configuration" \
    [ "$("$CLIENT" --url "$EMU_URL" count ListDistributionConfigurations distributionConfigurationSummaryList)" = "1 1 1" ]
check "the log has every call with its fault" \
    [ "$(log_eval "$LOG" '",".join(l["fault"] + ":" + str(l["status"]) for l in lines if l["operation"] and l["operation"].startswith("Create"))')" = \
      "drop:200,none:200,drop:200,none:200" ]
stop_emulator
finish
