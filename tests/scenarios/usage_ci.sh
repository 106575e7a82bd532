#!/usr/bin/env bash
# The CI examples, run as they are: examples/ci/github/ (two workflows and the
# setup-ibsync action) and examples/ci/gitlab-ci.yml are copied into a git
# repository of desired state, as a user would, and run by
# tests/usage/ci-runner.js through a pull request's life (opened, pushed to
# with the preview label, closed, merged) and pushes to main; then the shell
# snippets of the README usage sections and docs/ci.md run in a clone of it. Every
# ibsync line of the files must run and succeed; AWS is `ibsync emulator`,
# reached through GitHub OIDC / GitLab id_tokens and a fake STS (see
# tests/usage/lib.bash).
# Usage: usage_ci.sh IBSYNC SOURCE_DIR
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

ROLE_PLAN=arn:aws:iam::123456789012:role/ibsync-plan
ROLE_PREVIEW=arn:aws:iam::123456789012:role/ibsync-preview
ROLE_APPLY=arn:aws:iam::123456789012:role/ibsync-apply
IMAGE_GITHUB=ghcr.io/example/ibsync:0.1.0
IMAGE_GITLAB=registry.example.com/platform/ibsync:0.1.0
RUNNER=$USAGE_DIR/ci-runner.js
GH_FILES=("$SRC/examples/ci/github/workflows/ibsync-main.yml"
          "$SRC/examples/ci/github/workflows/ibsync-pull-request.yml"
          "$SRC/examples/ci/github/actions/setup-ibsync/action.yml")
GL_FILE=$SRC/examples/ci/gitlab-ci.yml
export USAGE_TEST_BIN=$IBSYNC USAGE_TEST_CALL_LOG=$WORK/calls.log USAGE_TEST_IMAGE=$IMAGE_GITHUB
start_fakes "$ROLE_PLAN" "$ROLE_PREVIEW" "$ROLE_APPLY"

# ---- the desired-state repository: images/ plus the CI files ---------------
seed=$WORK/seed
remote=$WORK/remote.git
mkdir -p "$seed/images" "$seed/.github"
cp -r "$SRC/examples/linux-golden-ami/." "$seed/images/"
cp -r "$SRC/examples/ci/github/." "$seed/.github/"
cp "$GL_FILE" "$seed/.gitlab-ci.yml"
echo "# platform images" >"$seed/README.md"
git -C "$seed" init -q
git -C "$seed" add -A
git -C "$seed" commit -qm "golden ami"
git clone -q --bare "$seed" "$remote"
git -C "$seed" remote add origin "$remote"
base=$(git -C "$seed" rev-parse HEAD)

# The pull request / merge request: two pushes to the branch `nginx-core`.
git -C "$seed" checkout -qb nginx-core
sed -i 's/dnf install -y nginx$/dnf install -y nginx-core/' "$seed/images/components/nginx.component.yaml"
git -C "$seed" commit -qam "nginx-core instead of nginx"
head1=$(git -C "$seed" rev-parse HEAD)
sed -i 's/t3a.medium/t3a.large/' "$seed/images/infrastructure.yaml"
git -C "$seed" commit -qam "bigger build instances"
head2=$(git -C "$seed" rev-parse HEAD)
git -C "$seed" push -q origin nginx-core
grep -q "nginx-core" "$seed/images/components/nginx.component.yaml" || abort "the test's edit of the component did not apply"

# refs/pull/42/merge as GitHub makes it: the branch merged into main.
pr_merge() {
    git -C "$seed" checkout -q --detach main
    git -C "$seed" merge -q --no-ff -m "Merge $1 into main" "$1"
    git -C "$seed" push -q -f origin HEAD:refs/pull/42/merge
    git -C "$seed" rev-parse HEAD
}

gh_run=0
# github WORKFLOW EVENT_NAME SHA REF EVENT_JSON: runs one workflow; sets
# GH_SUMMARY (the runner's JSON) and GH_STATUS.
github() {
    gh_run=$((gh_run + 1))
    printf '%s' "$5" >"$WORK/event-$gh_run.json"
    GH_SUMMARY=$WORK/gh-summary-$gh_run.json
    PATH=$USAGE_DIR/shims:$PATH node "$RUNNER" github "$1" --event-name "$2" --sha "$3" --ref "$4" \
        --event "$WORK/event-$gh_run.json" --repo example/images --remote "$remote" \
        --vars "{\"IBSYNC_PLAN_ROLE_ARN\":\"$ROLE_PLAN\",\"IBSYNC_PREVIEW_ROLE_ARN\":\"$ROLE_PREVIEW\",\"IBSYNC_APPLY_ROLE_ARN\":\"$ROLE_APPLY\"}" \
        --out "$WORK/gh" --summary "$GH_SUMMARY" --run-index "$((gh_run * 10))" 2>"$WORK/gh-log-$gh_run.txt"
    GH_STATUS=$?
    if [ "$GH_STATUS" -ne 0 ] && [ "${GH_QUIET:-}" != 1 ]; then
        cat "$WORK/gh-log-$gh_run.txt"
    fi
}
# jobs SUMMARY: "job=result ..." sorted
jobs_of() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join("%s=%s" % (k, v["result"]) for k, v in sorted(d["jobs"].items())))' "$1"
}
job_field() { # SUMMARY JOB FIELD
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["jobs"][sys.argv[2]].get(sys.argv[3], ""))' "$@"
}
pr_event() { # ACTION SHA LABELS_JSON [HEAD_REPO]
    printf '{"action":"%s","number":42,"pull_request":{"number":42,"labels":%s,"base":{"ref":"main","sha":"%s"},"head":{"ref":"nginx-core","sha":"%s","repo":{"full_name":"%s"}}}}' \
        "$1" "$3" "$base" "$2" "${4:-example/images}"
}
comments() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["comments"]))' "$WORK/gh/github-comments.json"; }
sts_roles() { fake_state | python3 -c 'import json,sys; print(" ".join(s["role"].rsplit("/",1)[1] for s in json.load(sys.stdin)["sts"]))'; }
MAIN=${GH_FILES[0]}
PR=${GH_FILES[1]}
PROD_NAMES="build-small harden-ssh install-nginx web-server web-server-weekly"
PREVIEW_NAMES="pr42-build-small pr42-harden-ssh pr42-install-nginx pr42-web-server pr42-web-server-weekly"

# ==== GitHub Actions ============================================================
start_emulator "$WORK/account-github"

# 1. The first push to main: plan -o plan.bin, then apply plan.bin.
github "$MAIN" push "$base" refs/heads/main '{"ref":"refs/heads/main"}'
expect_status "main: workflow" 0 "$GH_STATUS"
expect_eq "main: jobs" "apply=success plan=success" "$(jobs_of "$GH_SUMMARY")"
expect_match "main: plan in the job summary" "$(job_field "$GH_SUMMARY" plan summary)" "<!-- ibsync-plan stack=golden-ami -->"
expect_match "main: plan in the job summary" "$(job_field "$GH_SUMMARY" plan summary)" "**Plan: 8 to create, 0 new versions, 0 to update, 0 to tag, 0 to delete.**"
artifacts=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["artifacts"])' "$GH_SUMMARY")
[ -s "$artifacts/ibsync-plan/plan.bin" ] && ok || fail "main: no plan.bin artifact"
expect_eq "main: applied" "$PROD_NAMES" "$(names)"
expect_eq "main: OIDC roles" "ibsync-plan ibsync-apply" "$(sts_roles)"

# 2. Pull request opened: diff and plan; the plan becomes one comment.
merge1=$(pr_merge "$head1")
github "$PR" pull_request "$merge1" refs/pull/42/merge "$(pr_event opened "$merge1" '[]')"
expect_status "pr opened: workflow" 0 "$GH_STATUS"
expect_eq "pr opened: jobs" "cleanup=skipped diff=success plan=success preview=skipped" "$(jobs_of "$GH_SUMMARY")"
diff_md=$(job_field "$GH_SUMMARY" diff summary)
expect_match "pr opened: diff" "$diff_md" "+/- Component/install-nginx@1.0.1</code> new version: spec changed"
expect_match "pr opened: diff" "$diff_md" "+             - dnf install -y nginx-core"
c=$(comments)
expect_eq "pr opened: one comment" 1 "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$c")"
expect_eq "pr opened: comment starts with the marker" "<!-- ibsync-plan stack=golden-ami -->" \
    "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["body"].split("\n")[0])' "$c")"
expect_match "pr opened: comment is the plan" "$c" "+/- Component/install-nginx@1.0.1"
expect_eq "pr opened: roles" "ibsync-plan ibsync-apply ibsync-plan" "$(sts_roles)"

# From a fork: only the diff runs (no OIDC token for a fork's workflow).
github "$PR" pull_request "$merge1" refs/pull/42/merge "$(pr_event opened "$merge1" '[{"name":"ibsync-preview"}]' someone/images)"
expect_status "pr from a fork: workflow" 0 "$GH_STATUS"
expect_eq "pr from a fork: jobs" "cleanup=skipped diff=success plan=skipped preview=skipped" "$(jobs_of "$GH_SUMMARY")"

# 3. A second push, labelled ibsync-preview: the comment is edited in place,
#    and the preview stack pr-42 is applied next to production.
git -C "$seed" checkout -q main
merge2=$(pr_merge "$head2")
github "$PR" pull_request "$merge2" refs/pull/42/merge "$(pr_event synchronize "$merge2" '[{"name":"ibsync-preview"}]')"
expect_status "pr preview: workflow" 0 "$GH_STATUS"
expect_eq "pr preview: jobs" "cleanup=skipped diff=success plan=success preview=success" "$(jobs_of "$GH_SUMMARY")"
c=$(comments)
expect_eq "pr preview: still one comment, edited once" "1 1" \
    "$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); print(len(c), c[0]["edits"])' "$c")"
expect_match "pr preview: the comment shows the new push" "$c" "t3a.large"
expect_eq "pr preview: names" "$(sorted $PROD_NAMES $PREVIEW_NAMES)" "$(names)"
expect_eq "pr preview: stack tag" "pr-42" \
    "$(q ListImagePipelines '{}' '[i for i in items if i["name"]=="pr42-web-server-weekly"][0]["tags"]["ibsync:stack"]')"
expect_eq "pr preview: preview has the change" "1.0.0" \
    "$(q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["version"] for i in items if i["name"]=="pr42-install-nginx"))')"
expect_eq "pr preview: production untouched" "1.0.0" \
    "$(q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["version"] for i in items if i["name"]=="install-nginx"))')"
expect_eq "pr preview: roles" "ibsync-plan ibsync-apply ibsync-plan ibsync-plan ibsync-preview" "$(sts_roles)"

# 4. Closed: the preview stack is destroyed; nothing else runs.
github "$PR" pull_request "$merge2" refs/pull/42/merge "$(pr_event closed "$merge2" '[{"name":"ibsync-preview"}]')"
expect_status "pr closed: workflow" 0 "$GH_STATUS"
expect_eq "pr closed: jobs" "cleanup=success diff=skipped plan=skipped preview=skipped" "$(jobs_of "$GH_SUMMARY")"
expect_eq "pr closed: preview destroyed, production kept" "$PROD_NAMES" "$(names)"

# 5. Merged: main plans and applies the change.
git -C "$seed" checkout -q main
git -C "$seed" merge -q --no-ff -m "Merge nginx-core" nginx-core
git -C "$seed" push -q origin main
merged=$(git -C "$seed" rev-parse HEAD)
github "$MAIN" push "$merged" refs/heads/main '{"ref":"refs/heads/main"}'
expect_status "merged: workflow" 0 "$GH_STATUS"
expect_eq "merged: jobs" "apply=success plan=success" "$(jobs_of "$GH_SUMMARY")"
expect_eq "merged: new component version" "1.0.0 1.0.1" \
    "$(q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["version"] for i in items if i["name"]=="install-nginx"))')"
infra=$(q ListInfrastructureConfigurations '{}' '[i for i in items if i["name"]=="build-small"][0]["arn"]')
expect_eq "merged: infrastructure updated" "t3.medium,t3a.large" \
    "$(api GetInfrastructureConfiguration "{\"infrastructureConfigurationArn\":\"$infra\"}" |
        python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["infrastructureConfiguration"]["instanceTypes"])))')"

# 6. A push that changes no desired state: plan says so, apply is skipped.
echo "More docs." >>"$seed/README.md"
git -C "$seed" commit -qam "docs"
git -C "$seed" push -q origin main
github "$MAIN" push "$(git -C "$seed" rev-parse HEAD)" refs/heads/main '{"ref":"refs/heads/main"}'
expect_status "no-op push: workflow" 0 "$GH_STATUS"
expect_eq "no-op push: jobs" "apply=skipped plan=success" "$(jobs_of "$GH_SUMMARY")"
expect_eq "no-op push: output" "false" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"]["plan"]["outputs"]["changes"])' "$GH_SUMMARY")"

# 7. The runner checks what GitHub would: without id-token: write the
#    credentials step fails (so the checks above are not vacuous).
sed 's/id-token: write/id-token: none/' "$MAIN" >"$WORK/no-oidc.yml"
echo >>"$seed/README.md"
git -C "$seed" commit -qam "docs 2"
git -C "$seed" push -q origin main
GH_QUIET=1 github "$WORK/no-oidc.yml" push "$(git -C "$seed" rev-parse HEAD)" refs/heads/main '{"ref":"refs/heads/main"}'
expect_status "no id-token permission: workflow fails" 1 "$GH_STATUS"
expect_match "no id-token permission: message" "$(cat "$WORK/gh-log-$gh_run.txt")" \
    "the job may not request an OIDC token (permissions: id-token: write)"
stop_emulator

# ==== GitLab CI ======================================================================
start_emulator "$WORK/account-gitlab"
gl_run=0
# gitlab SHA REF VARS_JSON [runner options]: one pipeline; sets GL_SUMMARY, GL_STATUS
gitlab() {
    local sha=$1 ref=$2 vars=$3
    shift 3
    gl_run=$((gl_run + 1))
    GL_SUMMARY=$WORK/gl-summary-$gl_run.json
    node "$RUNNER" gitlab "$GL_FILE" --sha "$sha" --ref "$ref" --remote "$remote" --out "$WORK/gl" \
        --images "{\"$IMAGE_GITLAB\":{\"path\":\"$USAGE_DIR/shims/ibsync-image\",\"shell\":\"bash\"},\"alpine:3.20\":{\"path\":\"$USAGE_DIR/shims/alpine\",\"shell\":\"sh\"}}" \
        --vars "$vars" --summary "$GL_SUMMARY" --first-job-id "$((gl_run * 100))" "$@" 2>"$WORK/gl-log-$gl_run.txt"
    GL_STATUS=$?
    [ "$GL_STATUS" -eq 0 ] || cat "$WORK/gl-log-$gl_run.txt"
}
gl_common="\"CI_PROJECT_ID\":\"77\",\"CI_PROJECT_PATH\":\"platform/images\",\"CI_DEFAULT_BRANCH\":\"main\",\"CI_API_V4_URL\":\"$FAKE_URL/api/v4\",\"IBSYNC_PLAN_ROLE_ARN\":\"$ROLE_PLAN\",\"IBSYNC_PREVIEW_ROLE_ARN\":\"$ROLE_PREVIEW\",\"IBSYNC_APPLY_ROLE_ARN\":\"$ROLE_APPLY\",\"IBSYNC_GITLAB_TOKEN\":\"glpat-usage-test\""
mr_vars() { # SHA LABELS
    printf '{%s,"CI_PIPELINE_SOURCE":"merge_request_event","CI_MERGE_REQUEST_IID":"7","CI_MERGE_REQUEST_DIFF_BASE_SHA":"%s","CI_MERGE_REQUEST_LABELS":"%s","CI_COMMIT_REF_NAME":"nginx-core"}' \
        "$gl_common" "$base" "$2"
}
push_vars='{'$gl_common',"CI_PIPELINE_SOURCE":"push","CI_COMMIT_BRANCH":"main","CI_COMMIT_REF_NAME":"main"}'
notes() { fake_state | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["notes"].get("77!7", [])))'; }
sts_sessions() { fake_state | python3 -c 'import json,sys; print(" ".join(s["role"].rsplit("/",1)[1] + ":" + s["session"] for s in json.load(sys.stdin)["sts"][int(sys.argv[1]):]))' "$1"; }
sts_before=$(fake_state | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sts"]))')
PREVIEW_NAMES_GL="mr7-build-small mr7-harden-ssh mr7-install-nginx mr7-web-server mr7-web-server-weekly"

# 1. Default branch at the base commit: plan -o plan.bin, apply plan.bin.
git -C "$remote" update-ref refs/heads/main "$base"
gitlab "$base" refs/heads/main "$push_vars"
expect_status "gitlab main: pipeline" 0 "$GL_STATUS"
expect_eq "gitlab main: jobs" "ibsync-apply-main=success ibsync-plan-main=success" "$(jobs_of "$GL_SUMMARY")"
expect_eq "gitlab main: applied" "$PROD_NAMES" "$(names)"
# ibsync itself exchanged the job's ID token (AWS_WEB_IDENTITY_TOKEN_FILE).
expect_eq "gitlab main: web identity" "ibsync-plan:gitlab-77-100 ibsync-apply:gitlab-77-101" "$(sts_sessions "$sts_before")"

# 2. Merge request !7, first push: diff, plan, the plan as a note.
git -C "$remote" update-ref refs/merge-requests/7/head "$head1"
gitlab "$head1" refs/merge-requests/7/head "$(mr_vars "$head1" "")"
expect_status "gitlab mr: pipeline" 0 "$GL_STATUS"
expect_eq "gitlab mr: jobs" "ibsync-diff=success ibsync-plan=success ibsync-plan-comment=success" "$(jobs_of "$GL_SUMMARY")"
artifacts=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["artifacts"])' "$GL_SUMMARY")
expect_match "gitlab mr: diff.md" "$(cat "$artifacts/ibsync-diff/diff.md")" "+/- Component/install-nginx@1.0.1"
n=$(notes)
expect_eq "gitlab mr: one note with the marker" "1 <!-- ibsync-plan stack=golden-ami -->" \
    "$(python3 -c 'import json,sys; n=json.loads(sys.argv[1]); print(len(n), n[0]["body"].split("\n")[0])' "$n")"

# 3. Second push with the label: the note is edited; the preview is applied.
git -C "$remote" update-ref refs/merge-requests/7/head "$head2"
gitlab "$head2" refs/merge-requests/7/head "$(mr_vars "$head2" "team::platform,ibsync-preview")"
expect_status "gitlab preview: pipeline" 0 "$GL_STATUS"
expect_eq "gitlab preview: jobs" "ibsync-diff=success ibsync-plan=success ibsync-plan-comment=success ibsync-preview=success ibsync-preview-destroy=manual" "$(jobs_of "$GL_SUMMARY")"
n=$(notes)
expect_eq "gitlab preview: one note, edited once" "1 1" \
    "$(python3 -c 'import json,sys; n=json.loads(sys.argv[1]); print(len(n), n[0]["edits"])' "$n")"
expect_match "gitlab preview: the note shows the new push" "$n" "t3a.large"
expect_eq "gitlab preview: names" "$(sorted $PROD_NAMES $PREVIEW_NAMES_GL)" "$(names)"

# 4. The environment stops (merge, close, auto_stop_in): its stop job runs.
gitlab "$head2" refs/merge-requests/7/head "$(mr_vars "$head2" "ibsync-preview")" \
    --only ibsync-preview-destroy --play ibsync-preview-destroy
expect_status "gitlab stop: pipeline" 0 "$GL_STATUS"
expect_eq "gitlab stop: jobs" "ibsync-preview-destroy=success" "$(jobs_of "$GL_SUMMARY")"
expect_eq "gitlab stop: preview destroyed" "$PROD_NAMES" "$(names)"

# ==== every ibsync line of the CI files ran ============================================
node "$RUNNER" lines "${GH_FILES[@]}" "$GL_FILE" >"$WORK/lines.json"
missing=$(python3 - "$WORK/lines.json" "$WORK/gh/executed.jsonl" "$WORK/gl/executed.jsonl" <<'EOF'
import json, sys
want = {(l["file"], l["line"]) for l in json.load(open(sys.argv[1]))}
ran = set()
for f in sys.argv[2:]:
    for line in open(f):
        r = json.loads(line)
        ran.add((r["file"], r["line"]))
print(len(want))
for w in sorted(want - ran):
    print("not run: %s: %s" % w)
EOF
)
expect_eq "every ibsync line ran" "" "$(tail -n +2 <<<"$missing")"
[ "$(head -1 <<<"$missing")" -ge 9 ] && ok || fail "only $(head -1 <<<"$missing") ibsync lines found in the CI files"

# ==== the documentation's shell snippets ===============================================
# In a clone of the desired-state repository on the merge request's branch,
# with credentials configured (as after aws configure or an OIDC step).
ws=$WORK/docs-ws
git clone -q "$remote" "$ws"
git -C "$ws" checkout -q nginx-core
readme_usage "$WORK/README-usage.md"
for doc in README-usage.md docs/ci.md; do
    i=0
    while IFS= read -r -d '' block; do
        i=$((i + 1))
        want=$(node -e 'console.log(require(process.argv[1]).ibsyncLines(process.argv[2]).length)' "$RUNNER" "$block")
        before=$(wc -l <"$USAGE_TEST_CALL_LOG")
        out=$(cd "$ws" && AWS_ACCESS_KEY_ID=$USAGE_AKID AWS_SECRET_ACCESS_KEY=$USAGE_SECRET AWS_REGION=us-east-1 \
            PATH=$USAGE_DIR/shims/ibsync-image:$PATH bash --noprofile --norc -eo pipefail -c "$block" 2>&1)
        st=$?
        expect_status "$doc snippet $i" 0 "$st"
        [ "$st" -eq 0 ] || { echo "$block"; echo "$out" | tail -20; }
        expect_eq "$doc snippet $i: ibsync lines run" "$want" "$(($(wc -l <"$USAGE_TEST_CALL_LOG") - before))"
    done < <(snippets "$([ "$doc" = README-usage.md ] && echo "$WORK/$doc" || echo "$SRC/$doc")" sh)
    [ "$i" -gt 0 ] && ok || fail "$doc has no sh snippets"
done
expect_eq "docs: the snippets left production with the change applied" "1.0.0 1.0.1" \
    "$(q ListComponents '{"owner":"Self"}' '" ".join(sorted(i["version"] for i in items if i["name"]=="install-nginx"))')"
expect_eq "docs: no preview left" "$PROD_NAMES" "$(names)"

finish
