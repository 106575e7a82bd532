#!/usr/bin/env bash
# The AWS client against `ibsync emulator` with signatures checked and faults
# injected: each call succeeds within its attempt budget or fails after
# exactly that many attempts, nothing is created twice, and the emulator's
# request log holds exactly the attempts the retry rules call for.
# Usage: client_retries.sh IBSYNC SOURCE_DIR
set -u
ibsync=$1
tmp=$(mktemp -d)
emu_pid=
trap '[ -n "$emu_pid" ] && { kill -9 "$emu_pid"; wait "$emu_pid"; } 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/check.bash"

export AWS_ACCESS_KEY_ID=AKIDRETRY AWS_SECRET_ACCESS_KEY=retry-secret AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE AWS_MAX_ATTEMPTS
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

log="$tmp/requests.log"
"$ibsync" emulator --listen 127.0.0.1:0 --data "$tmp/data" --port-file "$tmp/port" --seed 7 \
    --credentials "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" --request-log "$log" \
    >"$tmp/emulator.out" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
    [ -s "$tmp/port" ] && break
    sleep 0.05
done
endpoint="http://127.0.0.1:$(cat "$tmp/port")"
faults() { curl -fsS -X POST -d "$1" "$endpoint/_ibsync/faults" >/dev/null || fail "admin: $1"; }
api() { "$ibsync" api --endpoint-url "$endpoint" "$@"; }
# lines OPERATION [STATUS]: request-log lines of an operation (with a status)
lines() {
    python3 - "$log" "$1" "${2:-}" <<'EOF'
import json, sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["operation"] == sys.argv[2] and (not sys.argv[3] or str(r["status"]) == sys.argv[3]):
        n += 1
print(n)
EOF
}
reset_log() { : >"$log"; }

comp='{"name":"retry-me","semanticVersion":"1.0.0","platform":"Linux","data":"name: r\nschemaVersion: 1.0\nphases: []\n","clientToken":"11111111-2222-3333-4444-555555555555"}'
arn_prefix="arn:aws:imagebuilder:us-east-1:123456789012:component/retry-me/1.0.0"

# 1. Throttled on every attempt: exactly max-attempts (3) requests, then the
#    throttling error.
faults '{"throttleRate":1}'
reset_log
out=$(api GetComponent "{\"componentBuildVersionArn\":\"$arn_prefix/1\"}" 2>&1)
expect_status throttled 1 $?
expect_match throttled "$out" "CallRateLimitExceededException"
expect_eq throttled-attempts 3 "$(lines GetComponent 429)"

# 2. AWS_MAX_ATTEMPTS=5 with every answer a 5xx: five requests.
faults '{"throttleRate":0,"errorRate":1}'
reset_log
out=$(AWS_MAX_ATTEMPTS=5 api GetComponent "{\"componentBuildVersionArn\":\"$arn_prefix/1\"}" 2>&1)
expect_status errors 1 $?
expect_eq error-attempts 5 "$(lines GetComponent)"

# 3. A client error is not retried: one request.
faults '{"errorRate":0}'
reset_log
out=$(api GetComponent "{\"componentBuildVersionArn\":\"$arn_prefix/1\"}" 2>&1)
expect_status not-found 1 $?
expect_match not-found "$out" "ResourceNotFoundException"
expect_eq not-found-attempts 1 "$(lines GetComponent)"

# 4. Every answer dropped: the create is committed on the first attempt,
#    retried with the same clientToken (replayed), and still fails; sent
#    again later with the same token, it answers with the original ARN and
#    there is one component.
faults '{"dropRate":1}'
reset_log
out=$(api CreateComponent "$comp" 2>&1)
expect_status dropped 1 $?
expect_eq dropped-attempts 3 "$(lines CreateComponent)"
faults '{"dropRate":0}'
out=$(api CreateComponent "$comp" 2>&1)
expect_status replayed 0 $?
expect_match replayed "$out" "\"componentBuildVersionArn\": \"$arn_prefix/1\""
expect_eq one-component 1 "$(api ListComponents '{"owner":"Self"}' --all | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"

# 5. 30% throttling: every call succeeds within 8 attempts, and the log holds
#    one success per call plus one 429 per retry the client reports.
faults '{"throttleRate":0.3}'
reset_log
retries=0
for i in $(seq 1 10); do
    out=$(api --debug --max-attempts 8 GetComponent "{\"componentBuildVersionArn\":\"$arn_prefix/1\"}" 2>&1)
    expect_status "throttled-call-$i" 0 $?
    retries=$((retries + $(grep -c "; retrying in " <<<"$out")))
done
expect_eq successes 10 "$(lines GetComponent 200)"
expect_eq retries-logged "$retries" "$(lines GetComponent 429)"
[ "$retries" -gt 0 ] && ok || fail "no call was throttled at 30%"
echo "30% throttling: 10 calls, $retries retries"

check_summary
