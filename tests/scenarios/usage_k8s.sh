#!/usr/bin/env bash
# The Kubernetes CronJob of deploy/kubernetes, checked and run as it is:
#   1. every manifest against the Kubernetes OpenAPI schemas (offline, the
#      kubernetes-models npm package) and the "restricted" Pod Security
#      Standard fields, each check shown to fail on a broken copy;
#   2. the pod, run by tests/usage/pod.sh as the kubelet would: the
#      CronJob's exact command line with $(VAR)s from the ConfigMap, user
#      10001 without privileges, a read-only root filesystem with the
#      manifest's volumes, AWS credentials through IRSA (the service
#      account's role, a projected token, STS AssumeRoleWithWebIdentity),
#      the metrics sidecar pushing to a Pushgateway. Only the git URL (a
#      local repository), the AWS and Pushgateway endpoints are the test's;
#   3. docs/metrics.md names exactly the metrics ibsync writes, and the
#      kubectl commands of the docs name the Secret the CronJob mounts.
# Needs root (mount namespaces). Usage: usage_k8s.sh IBSYNC SOURCE_DIR
IBSYNC=$1
SRC=$2
# shellcheck source=../usage/lib.bash
. "$SRC/tests/usage/lib.bash"

# The README's usage sections (from "## Pull-request previews" up to
# "## Validating desired state") as a file of their own, for the snippet checks.
readme_usage() {
    awk '/^## Pull-request previews/{on=1} /^## Validating desired state/{on=0} on' "$SRC/README.md" \
        >"$1"
    [ -s "$1" ] || fail "README.md has no usage sections"
}
setup_node
[ "$(id -u)" -eq 0 ] || abort "needs root: the pod runs in mount namespaces"
K8S=$USAGE_DIR/k8s.js
BASE=$SRC/deploy/kubernetes

# ---- 1. schemas and the restricted profile -------------------------------------
out=$(node "$K8S" check "$BASE" 2>&1)
expect_status "manifests: check" 0 $?
expect_match "manifests: check" "$out" " checks, 0 problems"
[ "$(grep -oE '^[0-9]+' <<<"$out" | tail -1)" -ge 50 ] && ok || fail "manifests: only $(tail -1 <<<"$out")"

# Each broken copy must be caught, with the field named.
mutate() { # SED_EXPR FILE EXPECTED_PROBLEM
    rm -rf "$WORK/bad" && cp -r "$BASE" "$WORK/bad"
    sed -i "$1" "$WORK/bad/$2"
    cmp -s "$BASE/$2" "$WORK/bad/$2" && { fail "mutation '$1' changed nothing in $2"; return; }
    local o
    o=$(node "$K8S" check "$WORK/bad" 2>&1)
    expect_status "broken copy ($1): check fails" 1 $?
    expect_match "broken copy ($1)" "$o" "$3"
}
mutate '0,/readOnlyRootFilesystem: true/s//readOnlyRootFilesystem: false/' cronjob.yaml \
    "container push-metrics: securityContext.readOnlyRootFilesystem is not true"
mutate 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' cronjob.yaml \
    "securityContext.allowPrivilegeEscalation is not false"
mutate 's/drop: \[ALL\]/drop: [NET_RAW]/' cronjob.yaml "securityContext.capabilities.drop lacks ALL"
mutate '0,/runAsNonRoot: true/s//runAsNonRoot: false/' cronjob.yaml "pod: securityContext.runAsNonRoot is not true"
mutate '0,/runAsUser: 10001/s//runAsUser: 0/' cronjob.yaml "pod: securityContext.runAsUser is not 10001"
mutate 's/type: RuntimeDefault/type: Unconfined/' cronjob.yaml "pod: securityContext.seccompProfile.type is not RuntimeDefault"
mutate 's/concurrencyPolicy: Forbid/concurrencyPolicy: Allow/' cronjob.yaml "CronJob: concurrencyPolicy is not Forbid"
mutate 's/^\( *\)emptyDir:$/\1hostPath: {path: \/var\/lib\/ibsync}\n\1x-emptyDir:/' cronjob.yaml "which \"restricted\" forbids"
mutate 's/- \/var\/run\/secrets\/ibsync\/git\/token/- \/var\/run\/secrets\/ibsync\/token/' cronjob.yaml \
    "container ibsync: --git-token-file /var/run/secrets/ibsync/token is not on a Secret volume"
mutate 's/defaultMode: 0440/defaultMode: 0444/' cronjob.yaml "defaultMode 444 lets others read the token"
mutate 's/IBSYNC_STACK: golden-ami/IBSYNC_STACKS: golden-ami/' configmap.yaml "\$(IBSYNC_STACK) is not in its environment"
mutate '/eks.amazonaws.com\/role-arn/d' serviceaccount.yaml "no IRSA annotation eks.amazonaws.com/role-arn"
mutate 's/schedule: "\*\/15 \* \* \* \*"/schedule: 15/' cronjob.yaml "schema: data/spec/schedule must be string"
mutate '0,/- name: state /s//- name: state\n                  mountPath: \/var\/lib\/ibsync\n                - name: stat /' cronjob.yaml \
    "mounts unknown volume stat"

# kustomize itself, where kubectl is installed (it is not a Debian package):
# the rendered objects are the ones checked above.
if command -v kubectl >/dev/null; then
    rendered=$(timeout 60 kubectl kustomize "$BASE" 2>&1)
    expect_status "kubectl kustomize" 0 $?
    expect_eq "kubectl kustomize: objects" "ConfigMap/ibsync CronJob/ibsync ServiceAccount/ibsync" \
        "$(python3 -c 'import re,sys; print(" ".join(sorted("%s/%s" % m for m in re.findall(r"^kind: (\S+)\nmetadata:\n(?:  .*\n)*?  name: (\S+)", sys.stdin.read(), re.M))))' <<<"$rendered")"
    expect_match "kubectl kustomize: image tag" "$rendered" "image: ghcr.io/example/ibsync:0.1.0"
else
    echo "note: kubectl is not installed; kustomize rendering not checked"
fi

# ---- 2. the pod ------------------------------------------------------------------
role=$(node -e 'const Y=require("yaml");console.log(Y.parse(require("fs").readFileSync(process.argv[1],"utf8")).metadata.annotations["eks.amazonaws.com/role-arn"])' "$BASE/serviceaccount.yaml")
start_emulator "$WORK/account"
start_fakes "$role"
mkdir -p "$WORK/git" "$WORK/seed/images" "$WORK/irsa"
cp -r "$SRC/examples/linux-golden-ami/." "$WORK/seed/images/"
git -C "$WORK/seed" init -q && git -C "$WORK/seed" add -A && git -C "$WORK/seed" commit -qm "golden ami"
git clone -q --bare "$WORK/seed" "$WORK/git/images.git"
# The projected token EKS mounts for IRSA: a JWT for the audience STS checks.
node -e 'const b=(o)=>Buffer.from(JSON.stringify(o)).toString("base64url");console.log(b({alg:"RS256"})+"."+b({aud:"sts.amazonaws.com",sub:"system:serviceaccount:ibsync:ibsync"})+".c2ln")' >"$WORK/irsa/token"
chmod 0644 "$WORK/irsa/token"
printf '%s\n' "$WORK/irsa /var/run/secrets/eks.amazonaws.com/serviceaccount" >"$WORK/binds"
# What the EKS pod identity webhook injects for the annotation, and the test's endpoints.
printf '%s\n' "AWS_ROLE_ARN=$role" "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token" \
    AWS_STS_REGIONAL_ENDPOINTS=regional AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
    "AWS_ENDPOINT_URL_IMAGEBUILDER=$EMU_URL" "AWS_ENDPOINT_URL_STS=$FAKE_URL/sts" AWS_EC2_METADATA_DISABLED=true >"$WORK/env"

pods=0
# run_pod [NAME=VALUE...]: a new Job's pod with the ConfigMap's settings
# (IBSYNC_REPO pointing at the fake git server) and these overrides; sets
# POD (its directory), POD_STATUS, POD_OUT, METRICS.
run_pod() {
    pods=$((pods + 1))
    POD=$WORK/pod$pods
    mkdir -p "$POD/volumes/git-token"
    printf '%s\n' "$USAGE_GIT_TOKEN" >"$POD/volumes/git-token/token"
    chgrp 10001 "$POD/volumes/git-token/token" && chmod 0440 "$POD/volumes/git-token/token"
    node "$K8S" pod "${POD_BASE:-$BASE}" "IBSYNC_REPO=$FAKE_URL/git/images.git" "PUSHGATEWAY_URL=$FAKE_URL" "$@" >"$POD/pod.json"
    bash "$USAGE_DIR/pod.sh" "$POD/pod.json" "$POD" "$IBSYNC" "$WORK/env" "$WORK/binds" 2>"$POD/pod.err"
    POD_STATUS=$?
    POD_OUT=$(cat "$POD/ibsync.out" 2>/dev/null)
    METRICS=$(cat "$POD/volumes/metrics/ibsync.prom" 2>/dev/null)
    if [ "$POD_STATUS" -gt 3 ] || [ -s "$POD/pod.err" ]; then
        cat "$POD/pod.err" "$POD/ibsync.err" 2>/dev/null | tail -20
    fi
}
json_lines_ok() { # every line of stdout is one JSON object with the common fields
    python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().split("\n") if l]
assert lines, "no output"
for l in lines:
    o = json.loads(l)
    assert set(["time", "level", "event", "stack"]) <= set(o), l
    assert o["stack"] == "golden-ami", l
print(len(lines))' <<<"$POD_OUT"
}
result_of() { python3 -c 'import json,sys; print([json.loads(l) for l in sys.stdin.read().split("\n") if l][-1].get("result", ""))' <<<"$POD_OUT"; }
pushed() { fake_state | python3 -c 'import json,sys; print(json.load(sys.stdin)["pushes"].get("/metrics/job/ibsync/stack/golden-ami", ""))'; }

# Run 1: an empty account: everything is created.
run_pod
expect_status "pod 1: exit status" 0 "$POD_STATUS"
n=$(json_lines_ok 2>&1) && ok || fail "pod 1: stdout is not JSON lines: $n"
expect_eq "pod 1: result" changed "$(result_of)"
expect_match "pod 1: planned events" "$POD_OUT" '"event":"action_done","stack":"golden-ami","action":"create","kind":"ImagePipeline","name":"web-server-weekly"'
expect_match "pod 1: metrics" "$METRICS" 'ibsync_last_run_result{stack="golden-ami",result="changed"} 1'
expect_match "pod 1: metrics" "$METRICS" 'ibsync_last_run_success{stack="golden-ami"} 1'
expect_match "pod 1: metrics" "$METRICS" 'ibsync_last_run_actions{stack="golden-ami",type="create"} 8'
expect_eq "pod 1: the sidecar pushed the metrics file" "$METRICS" "$(pushed)"
expect_match "pod 1: sidecar log" "$(cat "$POD/push-metrics.log")" "pushed /var/lib/ibsync/metrics/ibsync.prom to $FAKE_URL"
[ -d "$POD/volumes/state/git" ] && ok || fail "pod 1: no git cache in the state volume"
expect_eq "pod 1: git fetched with the Secret's token" "x-access-token" \
    "$(fake_state | python3 -c 'import json,sys; print(" ".join(sorted(set(g["user"] for g in json.load(sys.stdin)["git"]))))')"
expect_eq "pod 1: IRSA role assumed" "$role" \
    "$(fake_state | python3 -c 'import json,sys; print(" ".join(sorted(set(s["role"] for s in json.load(sys.stdin)["sts"]))))')"
expect_eq "pod 1: applied" "build-small harden-ssh install-nginx web-server web-server-weekly" "$(names)"

# Run 2: the next schedule, a new pod: nothing to do.
run_pod
expect_status "pod 2: exit status" 0 "$POD_STATUS"
expect_eq "pod 2: result" in_sync "$(result_of)"
expect_match "pod 2: metrics" "$METRICS" 'ibsync_last_run_result{stack="golden-ami",result="in_sync"} 1'
expect_eq "pod 2: pushed" "$METRICS" "$(pushed)"

# Run 3: a change made outside ibsync is repaired and counted as drift.
infra=$(q ListInfrastructureConfigurations '{}' 'items[0]["arn"]')
api UpdateInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\",\"instanceProfileName\":\"EC2InstanceProfileForImageBuilder\",\"instanceTypes\":[\"m5.large\"],\"clientToken\":\"k8s-drift\"}" >/dev/null
run_pod
expect_status "pod 3: exit status" 0 "$POD_STATUS"
expect_eq "pod 3: result" changed "$(result_of)"
expect_match "pod 3: metrics" "$METRICS" 'ibsync_last_run_drift_resources{stack="golden-ami"} 1'
expect_eq "pod 3: repaired" "t3.medium,t3a.medium" \
    "$(api GetInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\"}" | python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["infrastructureConfiguration"]["instanceTypes"])))')"

# Run 4: a failing run (the ref is gone) exits 1, and its metrics say so and
# are pushed all the same.
run_pod IBSYNC_REF=no-such-branch
expect_status "pod 4: exit status" 1 "$POD_STATUS"
expect_eq "pod 4: result" failed "$(result_of)"
expect_match "pod 4: error event" "$POD_OUT" '"level":"error","event":"result"'
# (The stack label is checked loosely: a run that fails before the desired
# state is loaded labels its metrics stack="", even with --stack.)
grep -qE '^ibsync_last_run_success\{stack="[^"]*"\} 0$' <<<"$METRICS" && ok ||
    fail "pod 4: metrics: no ibsync_last_run_success 0 in: $METRICS"
expect_eq "pod 4: pushed" "$METRICS" "$(pushed)"

# Run 5: the emulation is strict: a state directory outside the volumes is
# on the read-only root filesystem, and ibsync cannot write it.
rm -rf "$WORK/ro" && cp -r "$BASE" "$WORK/ro"
sed -i 's|^\( *- \)/var/lib/ibsync$|\1/opt/ibsync-state|' "$WORK/ro/cronjob.yaml"
POD_BASE=$WORK/ro run_pod
expect_status "pod 5 (state dir not on a volume): exit status" 1 "$POD_STATUS"
expect_match "pod 5: read-only root filesystem" "$POD_OUT$(cat "$POD/ibsync.err")" "Read-only file system"

# ---- 3. the docs -----------------------------------------------------------------
m=$(cat "$WORK/pod1/volumes/metrics/ibsync.prom")
written=$(grep -oE '^ibsync_[a-z_]+' <<<"$m" | sort -u | tr '\n' ' ')
documented=$(grep -oE '`ibsync_[a-z_]+' "$SRC/docs/metrics.md" | tr -d '`' | sort -u | tr '\n' ' ')
expect_eq "docs/metrics.md documents exactly the metrics written" "$written" "$documented"
readme_usage "$WORK/README-usage.md"
for doc in README-usage.md docs/kubernetes.md; do
    cmds=$(snippets "$([ "$doc" = README-usage.md ] && echo "$WORK/$doc" || echo "$SRC/$doc")" console | tr '\0' '\n' | grep '^\$ kubectl')
    [ -n "$cmds" ] && ok || fail "$doc: no kubectl commands"
    while read -r line; do
        case $line in
        *"create secret generic"*)
            expect_match "$doc: the Secret the CronJob mounts" "$line" \
                "secret generic $(grep -oP 'secretName: \K\S+' "$BASE/cronjob.yaml") --from-file=$(grep -oP '^ *- key: \K\S+' "$BASE/cronjob.yaml")="
            ;;
        *" -k "*)
            dir=$(grep -oP ' -k \K\S+' <<<"$line")
            [ -f "$SRC/$dir/kustomization.yaml" ] && ok || fail "$doc: $line: no $dir/kustomization.yaml"
            ;;
        esac
    done <<<"$cmds"
done
# The overlay of docs/kubernetes.md builds on the base.
overlay=$(snippets "$SRC/docs/kubernetes.md" yaml | python3 -c 'import sys; print([b for b in sys.stdin.read().split("\0") if "kind: Kustomization" in b][0])')
mkdir -p "$WORK/repo/deploy/kubernetes" "$WORK/repo/overlays/production"
cp -r "$BASE/." "$WORK/repo/deploy/kubernetes/"
printf '%s\n' "$overlay" >"$WORK/repo/overlays/production/kustomization.yaml"
expect_match "docs/kubernetes.md overlay: builds on the base" "$overlay" "- ../../deploy/kubernetes"
if command -v kubectl >/dev/null; then
    rendered=$(timeout 60 kubectl kustomize "$WORK/repo/overlays/production" 2>&1)
    expect_status "docs/kubernetes.md overlay: kubectl kustomize" 0 $?
    expect_match "docs/kubernetes.md overlay: namespace" "$rendered" "namespace: ibsync"
    expect_match "docs/kubernetes.md overlay: role patched" "$rendered" \
        "eks.amazonaws.com/role-arn: arn:aws:iam::210987654321:role/ibsync-production"
    expect_match "docs/kubernetes.md overlay: image" "$rendered" "image: registry.example.com/platform/ibsync:0.1.0"
fi

finish
