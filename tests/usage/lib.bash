# Helpers of the usage scenario tests (tests/scenarios/usage_*.sh), sourced
# after setting IBSYNC (the binary) and SRC (the source tree).
#
# The tests run the repository's CI workflows, Kubernetes manifests and
# documentation snippets as they are. Only what lies outside this machine is
# replaced, always through the environment, never by editing a command:
#   AWS Image Builder  `ibsync emulator` requiring SigV4 with the key
#                      USAGE_AKID:USAGE_SECRET (AWS_ENDPOINT_URL_IMAGEBUILDER)
#   AWS STS            fake_services.py: AssumeRoleWithWebIdentity for the
#                      roles the files name, answering that key
#                      (AWS_ENDPOINT_URL_STS)
#   GitLab notes API, Pushgateway, a git server over HTTPS with token auth
#                      fake_services.py as well (plain HTTP, $FAKE_URL/git/;
#                      repositories under $WORK/git)
#
#   ok / fail MSG / expect_eq / expect_match / expect_status  counters
#   finish              prints "N passed, N failed", exits non-zero on failures
#   setup_node          npm ci of tests/usage (once), fails without node
#   start_emulator DIR  sets EMU_URL       start_fakes  sets FAKE_URL
#   api OP JSON         one Image Builder call (all pages) on the emulator
#   q OP JSON PYEXPR    evaluates PYEXPR over the items of api OP JSON
set -u

IBSYNC=$(realpath "$IBSYNC")
SRC=$(realpath "$SRC")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ibsync-usage.XXXXXX")
USAGE_DIR=$SRC/tests/usage
export NODE_PATH=$USAGE_DIR/node_modules
USAGE_AKID=AKIDUSAGETEST0000001
USAGE_SECRET=usage-test-secret-key
USAGE_GIT_TOKEN=usage-test-git-token
PIDS=()
PASSED=0
FAILED=0

# USAGE_KEEP=1 keeps the work directory, to look at after a failure.
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    if [ -n "${USAGE_KEEP:-}" ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); }
fail() {
    echo "FAIL: $*"
    FAILED=$((FAILED + 1))
}
expect_eq() { [ "$2" = "$3" ] && ok || fail "$1: got '$3', expected '$2'"; }
expect_status() { [ "$2" = "$3" ] && ok || fail "$1: exit status $3, expected $2"; }
expect_match() {
    if grep -qF -- "$3" <<<"$2"; then
        ok
    else
        fail "$1: missing '$3' in:"
        head -30 <<<"$2"
    fi
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}
# A failure that makes the rest meaningless.
abort() {
    fail "$*"
    finish
}

# Nothing of this machine's AWS configuration may leak into the tests, and
# nothing may try the instance metadata service.
for _v in $(compgen -e); do
    case $_v in AWS_*) unset "$_v" ;; esac
done
export HOME=$WORK/home AWS_EC2_METADATA_DISABLED=true GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name "Usage Test"
git config --global user.email usage@example.com
git config --global init.defaultBranch main
git config --global protocol.file.allow always

setup_node() {
    command -v node >/dev/null || abort "node is not installed (scripts/install-deps.sh installs it)"
    "$USAGE_DIR/setup.sh" >"$WORK/npm.log" 2>&1 || {
        cat "$WORK/npm.log"
        abort "tests/usage/setup.sh (npm ci) failed"
    }
}

wait_port() { # FILE PID WHAT
    local i
    for i in $(seq 1 200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || abort "$3 exited at start"
        sleep 0.05
    done
    abort "$3 did not start"
}

start_emulator() {
    rm -f "$WORK/emu.port"
    "$IBSYNC" emulator --data "$1" --region us-east-1 --credentials "$USAGE_AKID:$USAGE_SECRET" \
        --port-file "$WORK/emu.port" >"$WORK/emu.out" 2>"$WORK/emu.err" &
    EMU_PID=$!
    PIDS+=("$EMU_PID")
    wait_port "$WORK/emu.port" "$EMU_PID" "ibsync emulator"
    EMU_URL=http://127.0.0.1:$(cat "$WORK/emu.port")
    export AWS_ENDPOINT_URL_IMAGEBUILDER=$EMU_URL
}

stop_emulator() {
    kill "$EMU_PID" && wait "$EMU_PID" 2>/dev/null
}

# start_fakes ROLE... : the fake STS accepts these roles.
start_fakes() {
    local roles=() r
    for r in "$@"; do roles+=(--role "$r"); done
    python3 "$USAGE_DIR/fake_services.py" --port-file "$WORK/fake.port" --log "$WORK/fake.log" \
        --credentials "$USAGE_AKID:$USAGE_SECRET" --gitlab-token glpat-usage-test "${roles[@]}" \
        --git-root "$WORK/git" --git-token "$USAGE_GIT_TOKEN" \
        2>"$WORK/fake.err" &
    PIDS+=("$!")
    wait_port "$WORK/fake.port" "$!" "fake_services.py"
    FAKE_URL=http://127.0.0.1:$(cat "$WORK/fake.port")
    export AWS_ENDPOINT_URL_STS=$FAKE_URL/sts
}

fake_state() { curl -fsS "$FAKE_URL/_state"; }

api() {
    AWS_ACCESS_KEY_ID=$USAGE_AKID AWS_SECRET_ACCESS_KEY=$USAGE_SECRET \
        "$IBSYNC" api --endpoint-url "$EMU_URL" --region us-east-1 "$@"
}

q() {
    api "$1" "$2" --all | python3 -c "import json,sys; items=json.load(sys.stdin); print($3)"
}

# The names of every resource of the kinds the example uses, sorted.
names() {
    {
        q ListComponents '{"owner":"Self"}' '"\n".join(i["name"] for i in items)'
        q ListImageRecipes '{"owner":"Self"}' '"\n".join(i["name"] for i in items)'
        q ListImagePipelines '{}' '"\n".join(i["name"] for i in items)'
        q ListInfrastructureConfigurations '{}' '"\n".join(i["name"] for i in items)'
    } | grep -v '^$' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

sorted() { printf '%s\n' "$@" | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# Fenced code blocks of a markdown file: `snippets FILE LANG` prints them
# NUL-separated.
snippets() {
    python3 - "$1" "$2" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
for m in re.finditer(r"^```" + re.escape(sys.argv[2]) + r"\n(.*?)^```$", text, re.S | re.M):
    sys.stdout.write(m.group(1) + "\0")
EOF
}
