#!/usr/bin/env bash
# `ibsync validate` end to end: the examples validate clean, the broken tree
# gives exactly the diagnostics in tests/data/broken.expected, git sources
# (local path, ref, sub-path, file:// URL with a cache), and hostile input.
# Usage: test_validate.sh IBSYNC SOURCE_DIR
set -u
ibsync=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fails=0

ok() { pass=$((pass + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_status() { [ "$2" = "$3" ] && ok || fail "$1: exit status $3, expected $2"; }
expect_match() { grep -qF -- "$3" <<<"$2" && ok || { fail "$1: missing '$3' in:"; head -5 <<<"$2"; }; }

cd "$src" || exit 1

out=$("$ibsync" validate examples/linux-golden-ami 2>&1); expect_status golden 0 $?
expect_match golden "$out" 'examples/linux-golden-ami: valid, stack "golden-ami", 8 resources (2 Component, 1 Workflow, 1 ImageRecipe, 1 InfrastructureConfiguration, 1 DistributionConfiguration, 1 ImagePipeline, 1 LifecyclePolicy)'
out=$("$ibsync" validate examples/container-service 2>&1); expect_status container 0 $?
expect_match container "$out" 'valid, stack "api-container", 6 resources (2 Component, 1 ContainerRecipe, 1 InfrastructureConfiguration, 1 DistributionConfiguration, 1 ImagePipeline)'

# The broken tree: every diagnostic, in order, exactly.
(cd tests/data/broken && "$ibsync" validate . >"$tmp/out" 2>"$tmp/err")
expect_status broken 1 $?
if diff -u tests/data/broken.expected "$tmp/err" >"$tmp/diff"; then ok; else
    fail "broken tree diagnostics differ from tests/data/broken.expected:"; cat "$tmp/diff"; fi
[ ! -s "$tmp/out" ] && ok || fail "broken: unexpected stdout: $(cat "$tmp/out")"
out=$("$ibsync" validate -q examples/container-service 2>&1); expect_status quiet 0 $?
[ -z "$out" ] && ok || fail "quiet: printed '$out'"

out=$("$ibsync" validate "$tmp/does-not-exist" 2>&1); expect_status missing-dir 1 $?
expect_match missing-dir "$out" "does not exist"

# Git: a repository with two commits, the second one breaking a recipe.
export GIT_CONFIG_NOSYSTEM=1 HOME="$tmp"
repo="$tmp/repo"
mkdir -p "$repo"
cp -r examples/linux-golden-ami examples/container-service "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" -c user.name=t -c user.email=t@example.com add -A
git -C "$repo" -c user.name=t -c user.email=t@example.com commit -qm good
good=$(git -C "$repo" rev-parse HEAD)
git -C "$repo" tag v1
sed -i 's/{ref: harden-ssh}/{ref: harden-sshd}/' "$repo/linux-golden-ami/recipe.yaml"
git -C "$repo" -c user.name=t -c user.email=t@example.com commit -qam broken
rm -rf "$repo/linux-golden-ami"   # the work tree is never read

out=$("$ibsync" validate --repo "$repo" --ref v1 --path linux-golden-ami 2>&1); expect_status git-tag 0 $?
expect_match git-tag "$out" "(commit ${good:0:12})"
expect_match git-tag "$out" "8 resources"
out=$("$ibsync" validate --repo "$repo" --ref "${good:0:8}" --path container-service 2>&1)
expect_status git-sha 0 $?
out=$("$ibsync" validate --repo "$repo" --ref main --path linux-golden-ami 2>&1); expect_status git-main 1 $?
expect_match git-main "$out" 'recipe.yaml:13:21: error: spec.components[2].componentArn: unresolved ref: no Component named "harden-sshd" is declared; did you mean "harden-ssh"?'
out=$("$ibsync" validate --repo "$repo" --ref nope --path linux-golden-ami 2>&1); expect_status git-badref 1 $?
expect_match git-badref "$out" 'ref "nope" not found'
out=$("$ibsync" validate --repo "$repo" --ref v1 --path nowhere 2>&1); expect_status git-badpath 1 $?
expect_match git-badpath "$out" 'path "nowhere" not found'

# A URL is cloned into the state directory once, then fetched.
out=$("$ibsync" validate --repo "file://$repo" --ref v1 --path linux-golden-ami --state-dir "$tmp/state" 2>&1)
expect_status url 0 $?
cache=$(ls -d "$tmp"/state/git/*/ 2>/dev/null | head -1)
[ -n "$cache" ] && ok || fail "url: no cache under $tmp/state/git"
touch "$cache/marker"
out=$("$ibsync" validate --repo "file://$repo" --ref main --path container-service --state-dir "$tmp/state" 2>&1)
expect_status url-again 0 $?
[ -e "$cache/marker" ] && ok || fail "url-again: the cache was re-cloned, not fetched"

# Hostile input: each must fail cleanly and fast, naming the file.
h="$tmp/hostile"
mkdir -p "$h"
head -c $((50 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$h/huge.yaml"
python3 -c "print('[' * 100000 + ']' * 100000)" >"$h/deep.yaml"
{
    echo 'a: &a ["x","x","x","x","x","x","x","x","x","x"]'
    for i in b c d e f g h i j k l m; do
        prev=$(printf "\\x$(printf %x $(( $(printf %d "'$i") - 1 )))")
        echo "$i: &$i [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"
    done
} >"$h/bomb.yaml"
start=$(date +%s)
out=$("$ibsync" validate "$h" 2>&1); expect_status hostile 1 $?
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -lt 30 ] && ok || fail "hostile input took ${elapsed}s"
expect_match hostile "$out" "huge.yaml: error: cannot read file"
expect_match hostile "$out" "deep.yaml:"
expect_match hostile "$out" "bomb.yaml:"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
