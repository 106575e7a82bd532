#!/bin/bash
# Signature checking with --credentials: requests signed with ibsync's own
# SigV4 signer pass (including an ARN in the path and repeated query keys);
# a wrong secret, an unknown key, no signature, a stale date and another
# region are refused with 403 and the code AWS uses; the admin endpoint
# stays open; refusals are in the request log.
. "$(dirname "$0")/emulator_lib.bash"

KEY=AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
LOG=$WORK/requests.log
start_emulator "$WORK/data" --credentials "$KEY" --request-log "$LOG"
check "the emulator says signatures are required" grep -q 'signatures required' "$WORK/emu.err"

SIGN=(--sign "$KEY")
call PUT /CreateInfrastructureConfiguration \
    '{"name": "signed-infra", "instanceProfileName": "role", "clientToken": "s1"}' \
    --field infrastructureConfigurationArn
check "a signed create succeeds" [ "$STATUS" = 200 ]
ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$BODY")
call POST "/tags/$ENC" '{"tags": {"a": "1", "b": "2", "c": "3"}}'
check "a signed TagResource (ARN in the path, signed double-encoded) succeeds" [ "$STATUS" = 200 ]
call DELETE "/tags/$ENC?tagKeys=a&tagKeys=c"
check "a signed UntagResource with repeated tagKeys succeeds" [ "$STATUS" = 200 ]
call GET "/tags/$ENC"
check "and removed both keys" [ "$STATUS $BODY" = '200 {"tags":{"b":"2"}}' ]
call GET "/GetInfrastructureConfiguration?infrastructureConfigurationArn=$ENC"
check "a signed GET with the ARN in the query succeeds" [ "$STATUS" = 200 ]

SIGN=(--sign AKIDEXAMPLE:not-the-secret)
call POST /ListComponents '{}'
check "a wrong secret: 403 InvalidSignatureException" [ "$STATUS $ETYPE" = "403 InvalidSignatureException" ]
check "with the service's message" grep -q 'The request signature we calculated does not match' <<<"$BODY"
check "and a request id" grep -Eq '^[0-9a-f-]{36}$' <<<"$RID"
SIGN=(--sign AKIDUNKNOWN:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY)
call POST /ListComponents '{}'
check "an unknown key: 403 UnrecognizedClientException" [ "$STATUS $ETYPE" = "403 UnrecognizedClientException" ]
SIGN=()
call POST /ListComponents '{}'
check "no signature: 403 MissingAuthenticationTokenException" \
    [ "$STATUS $ETYPE" = "403 MissingAuthenticationTokenException" ]
SIGN=(--sign "$KEY" --time-offset -600)
call POST /ListComponents '{}'
check "a date 10 minutes old: 403 InvalidSignatureException" [ "$STATUS $ETYPE" = "403 InvalidSignatureException" ]
SIGN=(--sign "$KEY" --region eu-west-1)
call POST /ListComponents '{}'
check "signed for another region: 403" [ "$STATUS" = 403 ]
SIGN=(--sign "$KEY")
call GET /NoSuchOperation
check "a signed request for no operation: 404 UnknownOperationException" \
    [ "$STATUS $ETYPE" = "404 UnknownOperationException" ]

SIGN=()
call GET /_ibsync/health
check "the admin endpoint needs no signature" [ "$STATUS" = 200 ]
check "the refusals are logged with their operation" \
    [ "$(log_eval "$LOG" '[(l["operation"], l["status"]) for l in lines if l["status"] == 403]')" = \
      "$(python3 -c 'print([("ListComponents", 403)] * 5)')" ]
stop_emulator
finish
