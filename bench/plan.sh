#!/bin/bash
# What a plan and an apply of N resources cost, in API calls and seconds,
# against `ibsync emulator --latency-ms 50`, next to their physical bounds
# and to a Terraform-style refresh of the same account (docs/performance.md).
#
# Usage: bench/plan.sh [N] [options]
#   N                  resources in the stack (default 1000; at least 8)
#   --local-n M        resources of the validate / plan --local figures
#                      (default 10000)
#   --latency-ms L     the emulator's injected latency per call (default 50)
#   --parallelism P    ibsync apply --parallelism (default 4, ibsync's default)
#   --repeat R         runs of the warm plan, of the refresh and of the
#                      validate / plan --local figures; the median is
#                      reported (default 3)
#   --seed S           seed of tools/gen_stack.py and of the fault PRNG
#                      (default 1)
#   --keep             keep the work directory (stacks, request logs, outputs)
#
# The ibsync binary is $IBSYNC, else build/cmd/ibsync of this checkout; it is
# not built here. Needs python3, node 20+ with the interop tests' AWS SDK
# (tests/interop/node_modules; tests/interop/setup.sh is run when it is
# missing) and /usr/bin/time (Debian package time).
#
# Steps, each with a fresh --state-dir unless said otherwise; API calls are
# the request-log lines the emulator wrote during the step:
#   setup  generate the stack (tools/gen_stack.py), start the emulator,
#          plan it as JSON (untimed) for the dependency depth and the names
#   4      apply of the N creates to the empty account, next to its bound:
#          depth x latency + N x latency / parallelism
#   1a     the first plan after that apply (same state directory)
#   1      warm plan of the unchanged stack (same state directory again),
#          next to the list-page bound sum(ceil(n_kind / 25))
#   2      Terraform-style refresh: bench/tf_refresh.js lists every ARN
#          (untimed), then one Get per resource, 10 in flight (timed)
#   3      cold plan: an empty state directory, so an empty cache
#   4b     apply of the N creates to a second, empty emulator answering 10%
#          of calls 429 (--throttle-rate 0.1), with --keep-going and run again
#          until it succeeds (at most 5 runs), then every resource is listed:
#          duplicates (more versions or build versions of a name than
#          planned) and resources missing
#   5      validate, and plan --local against an empty local account (M
#          creates), of an M-resource stack, under /usr/bin/time -v, R times
#          each (median CPU and RSS)
#
# Prints the figures, their ratios and which targets are met. Exits 1 only on
# an error (a failed step, a plan of the unchanged stack that is not empty),
# never because a target is missed. It is a measurement, not a test.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
ibsync=${IBSYNC:-$here/build/cmd/ibsync}
n=1000
local_n=10000
latency=50
parallelism=4
repeat=3
seed=1
keep=0

usage() {
    echo "usage: $0 [N] [--local-n M] [--latency-ms L] [--parallelism P] [--repeat R]" \
        "[--seed S] [--keep]" >&2
    exit 2
}
posint() {
    if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
        echo "bench: $1 must be an integer >= $3" >&2
        exit 2
    fi
}
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    n=$1
    shift
fi
while [ $# -gt 0 ]; do
    case $1 in
    --local-n | --latency-ms | --parallelism | --repeat | --seed)
        [ $# -ge 2 ] || usage
        case $1 in
        --local-n) local_n=$2 ;;
        --latency-ms) latency=$2 ;;
        --parallelism) parallelism=$2 ;;
        --repeat) repeat=$2 ;;
        --seed) seed=$2 ;;
        esac
        shift 2 ;;
    --keep) keep=1; shift ;;
    *) usage ;;
    esac
done
posint N "$n" 8
posint --local-n "$local_n" 8
posint --latency-ms "$latency" 0
posint --parallelism "$parallelism" 1
posint --repeat "$repeat" 1
posint --seed "$seed" 0

die() {
    echo "bench: error: $*" >&2
    exit 1
}

[ -x "$ibsync" ] || die "$ibsync not found; build it (ninja -C build ibsync) or set IBSYNC"
command -v python3 >/dev/null || die "python3 not found"
command -v node >/dev/null || die "node not found (Node.js 20+)"
command -v curl >/dev/null || die "curl not found"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (Debian package time)"
if [ ! -f "$here/tests/interop/node_modules/@aws-sdk/client-imagebuilder/package.json" ]; then
    echo "bench: installing the AWS SDK for JavaScript (tests/interop/setup.sh)" >&2
    "$here/tests/interop/setup.sh" >&2 || die "tests/interop/setup.sh failed"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ibsync-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        if kill -TERM "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ "$keep" = 1 ]; then
        echo "bench: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# Any key is accepted by an emulator started without --credentials; the SDK
# and ibsync only need one to sign with. Nothing is read from ~/.aws.
export AWS_ACCESS_KEY_ID=AKIDBENCHMARK0000000 AWS_SECRET_ACCESS_KEY=bench-secret-key
export AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_MAX_ATTEMPTS

# start_emulator NAME ARGS...: an emulator on 127.0.0.1:0 with its data in
# $work/NAME and its request log in $work/NAME.log; sets URL.
start_emulator() {
    local name=$1 line='' pid
    shift
    : >"$work/$name.log"
    "$ibsync" emulator --listen 127.0.0.1:0 --data "$work/$name" --latency-ms "$latency" \
        --request-log "$work/$name.log" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 200); do
        line=$(grep -m1 '^ibsync emulator listening on ' "$work/$name.out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$pid" 2>/dev/null || die "the emulator exited at start: $(cat "$work/$name.err")"
        sleep 0.05
    done
    [ -n "$line" ] || die "the emulator did not report its address"
    URL=${line#ibsync emulator listening on }
}

lines() {
    wc -l <"$1" | tr -d ' '
}
now_ns() {
    date +%s%N
}
# calc EXPR: awk arithmetic, printed with 3 decimals (or FORMAT as $2).
calc() {
    awk "BEGIN { printf \"${2:-%.3f}\", $1 }"
}
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# timed NAME LOG COMMAND...: runs COMMAND with its output in $work/NAME.out
# and .err; sets WALL (seconds), CALLS (request-log lines of LOG written
# meanwhile), THROTTLED (those answered 429) and RC.
timed() {
    local name=$1 log=$2 before t0 t1
    shift 2
    before=$(lines "$log")
    t0=$(now_ns)
    RC=0
    "$@" >"$work/$name.out" 2>"$work/$name.err" || RC=$?
    t1=$(now_ns)
    WALL=$(calc "($t1 - $t0) / 1e9")
    CALLS=$(($(lines "$log") - before))
    THROTTLED=$(tail -n +"$((before + 1))" "$log" | grep -c '"status":429' || true)
}

fail_step() {
    echo "--- $work/$1.err:" >&2
    tail -n 20 "$work/$1.err" >&2
    die "$2"
}

# ---- setup -----------------------------------------------------------------

stack=$work/stack
python3 "$here/tools/gen_stack.py" "$n" "$stack" --seed "$seed" >"$work/counts" ||
    die "tools/gen_stack.py failed"
bound_pages=0
longest_pages=0
kinds_text=
while read -r kind count; do
    bound_pages=$((bound_pages + (count + 24) / 25))
    [ $(((count + 24) / 25)) -le "$longest_pages" ] || longest_pages=$(((count + 24) / 25))
    kinds_text="$kinds_text${kinds_text:+, }$count $kind"
done <"$work/counts"

start_emulator acct
url_a=$URL
log_a=$work/acct.log
account=(--endpoint-url "$url_a")

"$ibsync" plan "${account[@]}" --state-dir "$work/state-setup" --format json "$stack" \
    >"$work/plan.json" 2>"$work/plan-setup.err" || fail_step plan-setup "planning the stack failed"
read -r planned depth < <(python3 - "$work/plan.json" <<'EOF'
import json, sys
actions = json.load(open(sys.argv[1]))["actions"]
by_id = {a["id"]: a for a in actions}
memo = {}
def depth(i):
    # Actions on the longest chain of depends_on ending at action i.
    if i not in memo:
        memo[i] = 1 + max((depth(d) for d in by_id[i]["depends_on"]), default=0)
    return memo[i]
print(len(actions), max((depth(a["id"]) for a in actions), default=0))
EOF
)
[ "$planned" = "$n" ] || die "the plan of the empty account has $planned actions, not $n"

# ---- 4: apply from empty ---------------------------------------------------

before=$(lines "$log_a")
timed apply "$log_a" "$ibsync" apply "${account[@]}" --state-dir "$work/state" --auto-approve \
    --parallelism "$parallelism" "$stack"
[ "$RC" = 0 ] || fail_step apply "apply of the $n creates failed (exit $RC)"
apply_wall=$WALL apply_calls=$CALLS
# The emulator's own time per call (injected latency plus its work, e.g. the
# commit of a write), from the request log: the part of the gap to the bound
# that is the server's.
apply_server_ms=$(tail -n +"$((before + 1))" "$log_a" |
    sed -n 's/.*"latency_ms":\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { printf "%.1f", NR ? s / NR : 0 }')
apply_bound=$(calc "($depth * $latency + $n * $latency / $parallelism) / 1000")

# plan_step NAME STATE_DIR: an ibsync plan that must find no changes.
plan_step() {
    timed "$1" "$log_a" "$ibsync" plan "${account[@]}" --state-dir "$2" --detailed-exitcode \
        "$stack"
    case $RC in
    0) ;;
    2) die "$1: the plan of the unchanged stack has changes (see $work/$1.out with --keep)" ;;
    *) fail_step "$1" "$1: ibsync plan failed (exit $RC)" ;;
    esac
}

# ---- 1: plans of the unchanged stack ---------------------------------------

plan_step plan-after-apply "$work/state"
after_wall=$WALL after_calls=$CALLS
walls=() calls=()
for i in $(seq 1 "$repeat"); do
    plan_step "plan-warm-$i" "$work/state"
    walls+=("$WALL")
    calls+=("$CALLS")
done
warm_wall=$(median "${walls[@]}")
warm_calls=$(median "${calls[@]}")
warm_range="${calls[*]}"

# ---- 2: Terraform-style refresh --------------------------------------------

tf=("$here/bench/tf_refresh.js" --endpoint "$url_a" --region us-east-1)
node "${tf[@]}" list >"$work/inventory.json" 2>"$work/tf-list.err" ||
    fail_step tf-list "tf_refresh.js list failed"
listed=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' \
    "$work/inventory.json")
[ "$listed" = "$n" ] || die "the account holds $listed resources, not $n"
walls=() calls=()
for i in $(seq 1 "$repeat"); do
    timed "tf-refresh-$i" "$log_a" node "${tf[@]}" refresh --concurrency 10 "$work/inventory.json"
    [ "$RC" = 0 ] || fail_step "tf-refresh-$i" "tf_refresh.js refresh failed"
    walls+=("$(python3 -c 'import json, sys; print("%.3f" % json.loads(sys.stdin.read())["seconds"])' \
        <"$work/tf-refresh-$i.out")")
    calls+=("$CALLS")
done
tf_wall=$(median "${walls[@]}")
tf_calls=$(median "${calls[@]}")

# ---- 3: cold plan ----------------------------------------------------------

plan_step plan-cold "$work/state-cold"
cold_wall=$WALL cold_calls=$CALLS

# ---- 4b: apply under throttling --------------------------------------------

start_emulator throttled --throttle-rate 0.1 --seed "$seed"
url_b=$URL
log_b=$work/throttled.log
runs=0 thr_wall=0 thr_calls=0 thr_429=0 thr_runs=
while [ "$runs" -lt 5 ]; do
    runs=$((runs + 1))
    timed "apply-throttled-$runs" "$log_b" "$ibsync" apply --endpoint-url "$url_b" \
        --state-dir "$work/state-throttled" --auto-approve --keep-going \
        --parallelism "$parallelism" "$stack"
    thr_wall=$(calc "$thr_wall + $WALL")
    thr_calls=$((thr_calls + CALLS))
    thr_429=$((thr_429 + THROTTLED))
    thr_runs="$thr_runs${thr_runs:+, }$WALL s exit $RC"
    [ "$RC" = 0 ] && break
done
# The account is read back without faults, each resource once.
curl -fsS -X POST -d '{"throttleRate": 0}' "$url_b/_ibsync/faults" >/dev/null ||
    die "cannot turn the throttling off"
node "$here/bench/tf_refresh.js" list --endpoint "$url_b" --region us-east-1 \
    >"$work/inventory-throttled.json" 2>"$work/tf-list-throttled.err" ||
    fail_step tf-list-throttled "tf_refresh.js list failed"
read -r duplicates missing < <(python3 - "$work/plan.json" "$work/inventory-throttled.json" <<'EOF'
import collections, json, sys
planned = collections.Counter((a["kind"], a["name"]) for a in json.load(open(sys.argv[1]))["actions"])
live = json.load(open(sys.argv[2]))
have = collections.Counter((r["kind"], r["name"]) for r in live)
# A name with more resources (versions) than planned, a version with more
# than one build version, or a resource that was never planned is a duplicate.
dups = sum(max(0, c - planned.get(k, 0)) for k, c in have.items())
dups += sum(len(r["builds"]) - 1 for r in live if r["builds"] and len(r["builds"]) > 1)
missing = sum(max(0, c - have.get(k, 0)) for k, c in planned.items())
print(dups, missing)
EOF
)
thr_status="converged in $runs run(s) ($thr_runs)"
[ "$RC" = 0 ] || thr_status="NOT converged after $runs runs ($thr_runs)"

# ---- 5: validate and plan --local of local_n resources ---------------------

big=$work/stack-$local_n
python3 "$here/tools/gen_stack.py" "$local_n" "$big" --seed "$seed" >/dev/null ||
    die "tools/gen_stack.py failed"
# vtime NAME COMMAND...: sets CPU (user+sys seconds), RSS (MB), VWALL, RC.
vtime() {
    local name=$1
    shift
    RC=0
    /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || RC=$?
    read -r CPU RSS VWALL < <(awk -F': ' '
        /User time \(seconds\)/ { u = $2 }
        /System time \(seconds\)/ { s = $2 }
        /Maximum resident set size/ { m = $2 }
        /Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0
                                   for (i = 1; i <= n; i++) w = w * 60 + p[i] }
        END { printf "%.2f %.1f %.2f\n", u + s, m / 1024, w }' "$work/$name.time")
}
# Each R times (--repeat): CPU time on a shared virtual machine varies by
# tens of percent from run to run; the median is reported, with every run.
val_cpus=() val_rsss=() val_walls=() loc_cpus=() loc_rsss=() loc_walls=()
for i in $(seq 1 "$repeat"); do
    vtime "validate-big-$i" "$ibsync" validate "$big"
    [ "$RC" = 0 ] || fail_step "validate-big-$i" "ibsync validate of $local_n resources failed (exit $RC)"
    val_cpus+=("$CPU") val_rsss+=("$RSS") val_walls+=("$VWALL")
    rm -rf "$work/local-account" "$work/state-local"
    vtime "plan-local-$i" "$ibsync" plan --local="$work/local-account" --state-dir "$work/state-local" "$big"
    [ "$RC" = 0 ] || fail_step "plan-local-$i" "ibsync plan --local of $local_n resources failed (exit $RC)"
    grep -q "^Plan: $local_n to create" "$work/plan-local-$i.out" ||
        die "plan --local of an empty account does not plan $local_n creates: $(grep '^Plan:' "$work/plan-local-$i.out")"
    loc_cpus+=("$CPU") loc_rsss+=("$RSS") loc_walls+=("$VWALL")
done
val_cpu=$(median "${val_cpus[@]}") val_rss=$(median "${val_rsss[@]}") val_wall=$(median "${val_walls[@]}")
loc_cpu=$(median "${loc_cpus[@]}") loc_rss=$(median "${loc_rsss[@]}") loc_wall=$(median "${loc_walls[@]}")
val_runs="${val_cpus[*]}" loc_runs="${loc_cpus[*]}"

# ---- report ----------------------------------------------------------------

ms=$latency
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
ratio() {
    awk "BEGIN { if ($2 > 0) printf \"%.2f\", $1 / $2; else print \"inf\" }"
}
verdict() {
    awk "BEGIN { print ($1) ? \"met\" : \"MISSED\" }"
}
wall_ratio=$(ratio "$tf_wall" "$warm_wall")
# The most the wall-time ratio can be while each kind is one chain of pages
# (each request needs the previous page's nextToken): the refresh's N / 10
# round trips over the longest kind's pages (docs/performance.md).
wall_ceiling=$(ratio "$(calc "$n / 10" %.1f)" "$longest_pages")
call_ratio=$(ratio "$tf_calls" "$warm_calls")
warm_vs_bound=$(ratio "$warm_calls" "$bound_pages")
apply_vs_bound=$(ratio "$apply_wall" "$apply_bound")

echo "ibsync plan/apply benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "ibsync:  $("$ibsync" version)"
echo "machine: $(nproc) CPUs, $cpu, $mem RAM, $(uname -sr)"
echo "stack:   $n resources ($kinds_text), seed $seed; dependency depth $depth"
echo "account: ibsync emulator --latency-ms $ms; apply --parallelism $parallelism;" \
    "medians of $repeat run(s)"
echo
printf '%-46s %10s %10s   %s\n' "figure" "wall s" "API calls" "bound / notes"
printf '%-46s %10s %10s   %s\n' "1.  warm plan, unchanged stack" "$warm_wall" "$warm_calls" \
    "list pages: $bound_pages calls (calls ${warm_vs_bound}x bound; runs: $warm_range)"
printf '%-46s %10s %10s   %s\n' "1a. first plan after the apply" "$after_wall" "$after_calls" \
    "same state directory as the apply"
printf '%-46s %10s %10s   %s\n' "2.  Terraform-style refresh (SDK, 10 at once)" "$tf_wall" \
    "$tf_calls" "one Get per resource"
printf '%-46s %9sx %9sx   %s\n' "2/1 refresh / warm plan" "$wall_ratio" "$call_ratio" \
    "wall time ratio, API call ratio; wall time ceiling ${wall_ceiling}x ($n / 10 round trips over $longest_pages pages of the longest list)"
printf '%-46s %10s %10s   %s\n' "3.  cold plan (empty cache)" "$cold_wall" "$cold_calls" \
    "calls $(ratio "$cold_calls" "$bound_pages")x the list-page bound"
printf '%-46s %10s %10s   %s\n' "4.  apply of $n creates from empty" "$apply_wall" "$apply_calls" \
    "bound $apply_bound s = $depth x $ms ms + $n x $ms ms / $parallelism (${apply_vs_bound}x); server time per call $apply_server_ms ms"
printf '%-46s %10s %10s   %s\n' "4b. apply with --throttle-rate 0.1" "$thr_wall" "$thr_calls" \
    "$thr_429 answered 429; $thr_status; duplicates found: $duplicates; missing: $missing"
printf '%-46s %10s %10s   %s\n' "5.  validate, $local_n resources" "$val_wall" "-" \
    "CPU $val_cpu s, peak RSS $val_rss MB (CPU of the runs: $val_runs)"
printf '%-46s %10s %10s   %s\n' "5b. plan --local, $local_n creates" "$loc_wall" "-" \
    "CPU $loc_cpu s, peak RSS $loc_rss MB (CPU of the runs: $loc_runs)"
echo
echo "targets:"
printf '  %-52s %s\n' \
    "refresh / warm plan wall time >= 10: $wall_ratio" "$(verdict "$wall_ratio >= 10")" \
    "refresh / warm plan API calls >= 10: $call_ratio" "$(verdict "$call_ratio >= 10")" \
    "warm plan calls <= 1.1 x bound: $warm_calls <= $(calc "1.1 * $bound_pages" %.1f)" \
    "$(verdict "$warm_calls <= 1.1 * $bound_pages")" \
    "apply <= 1.25 x bound: $apply_wall s <= $(calc "1.25 * $apply_bound") s" \
    "$(verdict "$apply_wall <= 1.25 * $apply_bound")" \
    "throttled apply duplicates = 0: $duplicates" "$(verdict "$duplicates == 0")" \
    "validate $local_n: CPU < 1 s: $val_cpu s" "$(verdict "$val_cpu < 1")" \
    "validate $local_n: peak RSS < 200 MB: $val_rss MB" "$(verdict "$val_rss < 200")" \
    "plan --local $local_n: CPU < 1 s: $loc_cpu s" "$(verdict "$loc_cpu < 1")" \
    "plan --local $local_n: peak RSS < 200 MB: $loc_rss MB" "$(verdict "$loc_rss < 200")"
