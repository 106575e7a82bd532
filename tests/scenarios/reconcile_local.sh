#!/usr/bin/env bash
# Reconciler scenarios against the embedded local account (--local): apply
# from empty, empty re-plan, a component edit cascading to recipe and
# pipeline, a revert reusing the old version, pruning, drift repair, a stale
# saved plan, destroy. Every check of the account goes through the API
# (`ibsync api`), never through ibsync's own plan output.
# Usage: reconcile_local.sh IBSYNC SOURCE_DIR
set -u
ibsync=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/check.bash"

L="$tmp/account"
api() { "$ibsync" api --local="$L" "$@"; }
# count OPERATION JSON PYEXPR: evaluates PYEXPR over the list of all items
q() {
    local op=$1 req=$2 expr=$3
    api "$op" "$req" --all | python3 -c "import json,sys; items=json.load(sys.stdin); print($expr)"
}

export GIT_CONFIG_NOSYSTEM=1 HOME="$tmp"
repo="$tmp/repo"
mkdir -p "$repo"
cp -r "$src/examples/linux-golden-ami/." "$repo/"
git -C "$repo" init -q -b main
gitc() { git -C "$repo" -c user.name=t -c user.email=t@example.com "$@"; }
gitc add -A
gitc commit -qm "golden ami"

run() { "$ibsync" "$@" --local="$L" --state-dir "$tmp/state"; }

# 1. Apply from an empty account.
out=$(run apply --repo "$repo" --ref main --auto-approve 2>&1); expect_status apply 0 $?
expect_match apply "$out" "Plan: 8 to create, 0 new versions, 0 to update, 0 to tag, 0 to delete."
expect_match apply "$out" "Apply complete: 8 done, 0 failed, 0 not run"
expect_eq components 2 "$(q ListComponents '{"owner":"Self"}' 'len(items)')"
expect_eq recipes 1 "$(q ListImageRecipes '{"owner":"Self"}' 'len(items)')"
expect_eq pipelines 1 "$(q ListImagePipelines '{}' 'len(items)')"
expect_eq lifecycle 1 "$(q ListLifecyclePolicies '{}' 'len(items)')"
expect_eq stack-tag "golden-ami" "$(q ListImageRecipes '{"owner":"Self"}' 'items[0]["tags"]["ibsync:stack"]')"
expect_eq user-tag "platform" "$(q ListInfrastructureConfigurations '{}' 'items[0]["tags"]["team"]')"
recipe_arn=$(q ListImageRecipes '{"owner":"Self"}' 'items[0]["arn"]')
expect_eq pipeline-recipe "$recipe_arn" "$(q ListImagePipelines '{}' 'items[0]["imageRecipeArn"]')"

# 2. A plan right after an apply is empty, for every kind.
out=$(run plan --repo "$repo" --ref main --detailed-exitcode 2>&1); expect_status replan 0 $?
expect_match replan "$out" "No changes."

# 3. Edit a component's data: new component version, new recipe version,
#    pipeline updated to it, all in one plan.
sed -i 's/dnf install -y nginx/dnf install -y nginx nginx-mod-stream/' "$repo/components/nginx.component.yaml"
gitc commit -qam "nginx stream module"
out=$(run plan --repo "$repo" --ref main --detailed-exitcode 2>&1); expect_status cascade-plan 2 $?
expect_match cascade-plan "$out" "+/- Component/install-nginx@1.0.1 (replaces 1.0.0)"
expect_match cascade-plan "$out" "+/- ImageRecipe/web-server@1.0.1 (replaces 1.0.0)"
expect_match cascade-plan "$out" "cascade: Component install-nginx is now version 1.0.1"
expect_match cascade-plan "$out" "~ ImagePipeline/web-server-weekly"
grep -Eq '^ *\+ +- dnf install -y nginx nginx-mod-stream$' <<<"$out" && ok || fail "cascade-plan: no added line in the data diff"
out=$(run apply --repo "$repo" --ref main --auto-approve 2>&1); expect_status cascade-apply 0 $?
expect_eq nginx-versions "1.0.0 1.0.1" "$(q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["version"] for i in items if i["name"]=="install-nginx"))')"
expect_eq pipeline-moved "web-server/1.0.1" "$(q ListImagePipelines '{}' '"/".join(items[0]["imageRecipeArn"].split("/")[-2:])')"
out=$(run plan --repo "$repo" --ref main --detailed-exitcode 2>&1); expect_status cascade-replan 0 $?

# 4. Revert: the old versions carry the old hash and are reused.
gitc revert --no-edit HEAD >/dev/null
out=$(run apply --repo "$repo" --ref main --auto-approve 2>&1); expect_status revert 0 $?
expect_match revert "$out" "Plan: 0 to create, 0 new versions, 1 to update"
expect_eq revert-no-new-version "1.0.0 1.0.1" "$(q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["version"] for i in items if i["name"]=="install-nginx"))')"
expect_eq pipeline-back "web-server/1.0.0" "$(q ListImagePipelines '{}' '"/".join(items[0]["imageRecipeArn"].split("/")[-2:])')"

# 5. Drift: a change made through the API is planned and repaired.
infra=$(q ListInfrastructureConfigurations '{}' 'items[0]["arn"]')
api UpdateInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\",\"instanceProfileName\":\"EC2InstanceProfileForImageBuilder\",\"instanceTypes\":[\"m5.large\"],\"clientToken\":\"drift-1\"}" >/dev/null
expect_status drift-update 0 $?
out=$(run plan --repo "$repo" --ref main 2>&1)
expect_match drift-plan "$out" "~ InfrastructureConfiguration/build-small  # update: drift: changed outside ibsync"
expect_match drift-plan "$out" '~ instanceTypes: ["m5.large"] -> ["t3.medium", "t3a.medium"]'
out=$(run apply --repo "$repo" --ref main --auto-approve 2>&1); expect_status drift-apply 0 $?
expect_eq drift-repaired "t3.medium,t3a.medium" "$(api GetInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\"}" | python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["infrastructureConfiguration"]["instanceTypes"])))')"

# 6. A saved plan is refused once the account changed.
gitc rm -q pipeline.yaml lifecycle.yaml
gitc commit -qm "drop the pipeline"
out=$(run plan --repo "$repo" --ref main -o "$tmp/plan.bin" 2>&1); expect_status save 0 $?
expect_match save "$out" "- ImagePipeline/web-server-weekly"
api TagResource "{\"resourceArn\":\"$infra\",\"tags\":{\"touched\":\"yes\"}}" >/dev/null
out=$(run apply "$tmp/plan.bin" 2>&1); expect_status stale 1 $?
expect_match stale "$out" "is stale: the account changed since the plan was made"
expect_eq stale-kept 1 "$(q ListImagePipelines '{}' 'len(items)')"

# 7. Prune: the pipeline and policy removed from git are deleted; a fresh
#    saved plan applies exactly.
out=$(run plan --repo "$repo" --ref main -o "$tmp/plan2.bin" 2>&1); expect_status save2 0 $?
out=$(run apply "$tmp/plan2.bin" 2>&1); expect_status apply-saved 0 $?
expect_eq pruned 0 "$(q ListImagePipelines '{}' 'len(items)')"
expect_eq pruned-policy 0 "$(q ListLifecyclePolicies '{}' 'len(items)')"
expect_eq untagged-outsider "" "$(q ListInfrastructureConfigurations '{}' 'items[0]["tags"].get("touched","")')"

# 8. Unattended apply without --auto-approve is refused and changes nothing.
echo "# touch" >>"$repo/infrastructure.yaml"
sed -i 's/t3a.medium/t3a.large/' "$repo/infrastructure.yaml"
gitc commit -qam "bigger"
out=$(run apply --repo "$repo" --ref main </dev/null 2>&1); expect_status unattended 1 $?
expect_match unattended "$out" "refusing to change the account without --auto-approve"

# 9. reconcile: exit codes a CronJob can tell apart, JSON log lines, metrics.
out=$(run reconcile --repo "$repo" --ref main --detailed-exitcode --log-format json --metrics-file "$tmp/m.prom" 2>&1)
expect_status reconcile-changed 2 $?
expect_match reconcile-changed "$out" '"event":"result","stack":"golden-ami","result":"changed"'
out=$(run reconcile --repo "$repo" --ref main --detailed-exitcode 2>&1)
expect_status reconcile-in-sync 0 $?
api UpdateInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\",\"instanceProfileName\":\"other\",\"clientToken\":\"drift-2\"}" >/dev/null
out=$(run reconcile --repo "$repo" --ref main --dry-run --detailed-exitcode --log-format json --metrics-file "$tmp/m.prom" 2>&1)
expect_status reconcile-drift 3 $?
expect_match reconcile-drift "$out" '"event":"planned","stack":"golden-ami","action":"update","kind":"InfrastructureConfiguration","name":"build-small","reason":"drift: changed outside ibsync"'
expect_match metrics "$(cat "$tmp/m.prom")" 'ibsync_last_run_result{stack="golden-ami",result="drift"} 1'
expect_match metrics "$(cat "$tmp/m.prom")" 'ibsync_last_run_drift_resources{stack="golden-ami"} 1'
expect_eq dry-run-changed-nothing "other" "$(api GetInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["infrastructureConfiguration"]["instanceProfileName"])')"
out=$(run reconcile --repo "$repo" --ref main 2>&1)
expect_status reconcile-repair 0 $?

# 10. diff: what a change does, from git alone.
sed -i 's/dnf install -y nginx/dnf install -y nginx-core/' "$repo/components/nginx.component.yaml"
gitc commit -qam "nginx-core"
out=$("$ibsync" diff --repo "$repo" --base HEAD~1 --head HEAD --state-dir "$tmp/state" --detailed-exitcode 2>&1)
expect_status diff 2 $?
expect_match diff "$out" "+/- Component/install-nginx@1.0.1 (replaces 1.0.0)"
expect_match diff "$out" "+/- ImageRecipe/web-server@1.0.1 (replaces 1.0.0)"
expect_match diff "$out" "cascade: Component install-nginx is now version 1.0.1"
out=$("$ibsync" diff --repo "$repo" --base HEAD --head HEAD --state-dir "$tmp/state" --detailed-exitcode 2>&1)
expect_status diff-none 0 $?

# 11. The container stack (its own region) applies and re-plans empty.
out=$("$ibsync" apply --local="$tmp/acct-eu" --state-dir "$tmp/state" --auto-approve "$src/examples/container-service" 2>&1)
expect_status container-apply 0 $?
out=$("$ibsync" plan --local="$tmp/acct-eu" --state-dir "$tmp/state" --detailed-exitcode "$src/examples/container-service" 2>&1)
expect_status container-replan 0 $?
expect_eq container-recipe "api-service" "$("$ibsync" api --local="$tmp/acct-eu" --region eu-central-1 ListContainerRecipes '{"owner":"Self"}' --all | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')"

# 12. Destroy removes everything the stack manages.
out=$(run destroy --repo "$repo" --ref main --auto-approve 2>&1); expect_status destroy 0 $?
expect_eq destroyed "0 0 0 0" "$(echo $(q ListComponents '{"owner":"Self"}' 'len(items)') $(q ListImageRecipes '{"owner":"Self"}' 'len(items)') $(q ListInfrastructureConfigurations '{}' 'len(items)') $(q ListDistributionConfigurations '{}' 'len(items)'))"

check_summary
