#!/bin/bash
# Smoke test of the benchmark harness (bench/plan.sh, tools/gen_stack.py,
# bench/tf_refresh.js): a small stack, checking that every step runs, that
# every figure line is printed with numbers in it, that API calls are counted
# from the request log (the refresh makes exactly one Get per resource, the
# apply at least one call per create), that the throttled apply reports no
# duplicates, and that the work directory is removed. No timing thresholds:
# the figures are measurements, not assertions.
#
# Usage (ctest: scenario/bench_smoke): bench_smoke.sh IBSYNC_BINARY SOURCE_DIR
set -euo pipefail

IBSYNC=${1:?usage: $0 IBSYNC_BINARY SOURCE_DIR}
SRC=${2:?usage: $0 IBSYNC_BINARY SOURCE_DIR}
N=60
LOCAL_N=300
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ibsync-bench-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PASSED=0

fail() {
    echo "FAIL: $*" >&2
    [ -s "$WORK/out" ] && sed 's/^/  bench stdout: /' "$WORK/out" >&2
    [ -s "$WORK/err" ] && sed 's/^/  bench stderr: /' "$WORK/err" >&2
    echo "$PASSED passed, 1 failed"
    exit 1
}
check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        echo "ok $PASSED - $what"
    else
        fail "$what"
    fi
}
# The line of the report starting with LABEL.
line() {
    grep -m1 -F -- "$1" "$WORK/out" || true
}
# field LABEL COLUMN: the COLUMN-th word after LABEL on its line.
field() {
    line "$1" | sed "s/^.\{46\}//" | awk -v c="$2" '{ print $c }'
}
is_number() {
    [[ $1 =~ ^[0-9]+(\.[0-9]+)?x?$ ]]
}

# ---- the generator ---------------------------------------------------------

gen=(python3 "$SRC/tools/gen_stack.py")
"${gen[@]}" 40 "$WORK/a" --seed 7 >"$WORK/counts-a"
"${gen[@]}" 40 "$WORK/b" --seed 7 >/dev/null
"${gen[@]}" 40 "$WORK/c" --seed 8 >/dev/null
check "the same seed gives the same tree" diff -r "$WORK/a" "$WORK/b"
check "another seed gives another tree" bash -c "! diff -rq '$WORK/a' '$WORK/c' >/dev/null"
check "the kind counts add up to N" \
    test "$(awk '{ s += $2 } END { print s }' "$WORK/counts-a")" = 40
check "every kind is present" test "$(awk '$2 > 0' "$WORK/counts-a" | wc -l)" = 8
"$IBSYNC" validate "$WORK/a" >"$WORK/validate" 2>&1 || fail "validate: $(cat "$WORK/validate")"
check "the generated stack is valid" grep -q '^.*: valid, stack "bench", 40 resources' \
    "$WORK/validate"
check "a non-empty output directory is refused" \
    bash -c "! '${gen[*]}' 40 '$WORK/a' 2>/dev/null"
check "N below the number of kinds is refused" \
    bash -c "! '${gen[*]}' 7 '$WORK/d' 2>/dev/null && [ ! -e '$WORK/d' ]"

# ---- the harness -----------------------------------------------------------

rc=0
IBSYNC=$IBSYNC bash "$SRC/bench/plan.sh" 5 >"$WORK/out" 2>"$WORK/err" || rc=$?
check "plan.sh refuses N < 8 with status 2" test "$rc" = 2
check "and says why" grep -q 'N must be an integer >= 8' "$WORK/err"

mkdir "$WORK/tmp"
rc=0
TMPDIR=$WORK/tmp IBSYNC=$IBSYNC bash "$SRC/bench/plan.sh" "$N" --local-n "$LOCAL_N" \
    --repeat 2 --latency-ms 10 >"$WORK/out" 2>"$WORK/err" || rc=$?
check "plan.sh completes (exit 0)" test "$rc" = 0
check "it removes its work directory" test -z "$(ls -A "$WORK/tmp")"

for label in "1.  warm plan" "1a. first plan after the apply" "2.  Terraform-style refresh" \
    "3.  cold plan" "4.  apply of $N creates" "4b. apply with --throttle-rate 0.1"; do
    check "figure \"$label\" has a wall time and a call count" \
        bash -c "[[ '$(field "$label" 1)' =~ ^[0-9]+\.[0-9]+$ && '$(field "$label" 2)' =~ ^[0-9]+$ ]]"
done
check "the refresh / plan ratios are printed" \
    bash -c "[[ '$(field "2/1 refresh / warm plan" 1)' =~ ^[0-9.]+x$ &&
                '$(field "2/1 refresh / warm plan" 2)' =~ ^[0-9.]+x$ ]]"
check "the wall-time ceiling of the ratio is printed" \
    bash -c "grep -Eq 'wall time ceiling [0-9.]+x \($N / 10 round trips over [0-9]+ pages of the longest list\)' <<<'$(line "2/1 refresh")'"
for label in "5.  validate, $LOCAL_N resources" "5b. plan --local, $LOCAL_N creates"; do
    check "figure \"$label\" has CPU seconds and peak RSS" \
        bash -c "grep -Eq -- 'CPU [0-9.]+ s, peak RSS [0-9.]+ MB' <<<'$(line "$label")'"
    check "figure \"$label\" lists the CPU of both runs (--repeat 2)" \
        bash -c "grep -Eq -- '\(CPU of the runs: [0-9.]+ [0-9.]+\)$' <<<'$(line "$label")'"
done
check "the stack line names N resources and depth 3 (component, recipe, pipeline)" \
    grep -Eq "^stack: +$N resources \(.*\), seed 1; dependency depth 3$" "$WORK/out"
check "the machine is named" grep -Eq '^machine: [0-9]+ CPUs, .+ RAM' "$WORK/out"

# Calls come from the request log: the refresh is one Get per resource, and
# an apply of N creates makes at least N calls; a warm plan at least one List
# per kind.
check "the refresh made exactly $N calls" test "$(field "2.  Terraform-style refresh" 2)" = "$N"
check "the apply made at least $N calls" test "$(field "4.  apply of $N creates" 2)" -ge "$N"
check "the warm plan made at least 8 calls" test "$(field "1.  warm plan" 2)" -ge 8
bound=$(line "1.  warm plan" | sed -n 's/.*list pages: \([0-9]*\) calls.*/\1/p')
check "the list-page bound is the sum of ceil(n_kind / 25)" test "$bound" = 8
check "the apply bound is depth x latency + N x latency / parallelism; server time >= latency" \
    grep -Eq "bound 0\.[0-9]{3} s = [0-9]+ x 10 ms \+ $N x 10 ms / 4 \([0-9.]+x\); server time per call [1-9][0-9]+\.[0-9] ms" "$WORK/out"
check "the throttled apply saw 429s" \
    bash -c "grep -Eq '[1-9][0-9]* answered 429' <<<'$(line "4b. apply")'"
check "the throttled apply converged" \
    bash -c "grep -q 'converged in [1-5] run' <<<'$(line "4b. apply")'"
check "no duplicates and nothing missing" \
    bash -c "grep -q 'duplicates found: 0; missing: 0' <<<'$(line "4b. apply")'"
check "nine targets are reported, each met or MISSED" \
    test "$(grep -Ec '^  .*(met|MISSED)$' "$WORK/out")" = 9
check "nothing was written to stderr" test ! -s "$WORK/err"
echo "$PASSED passed, 0 failed"
