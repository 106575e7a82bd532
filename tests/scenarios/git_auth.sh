#!/usr/bin/env bash
# Git authentication end to end with `ibsync validate --repo URL`:
#  (a) a smart-HTTP server on loopback requiring basic auth (git http-backend
#      behind tests/data/source/git-http-auth-server.py): the token from
#      --git-token-file, IBSYNC_GIT_TOKEN, GIT_TOKEN or the URL works; a wrong
#      or missing token fails with a message naming the URL and where the
#      token came from; --git-username / IBSYNC_GIT_USERNAME are sent;
#  (b) sshd on a loopback port (tests/data/source/sshd-setup.sh): keys with
#      and without passphrase, host keys checked against --git-known-hosts
#      (default ~/.ssh/known_hosts), unknown and changed host keys refused.
# No token or passphrase may appear in any output or in the state directory.
# Every server is started and stopped here. Without sshd (openssh-server)
# part (b) is skipped and the script exits 77 (ctest: skipped).
# Usage: git_auth.sh IBSYNC SOURCE_DIR
set -u
ibsync=$1
src=$2
tmp=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fails=0
ok() { pass=$((pass + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_status() { [ "$2" = "$3" ] && ok || fail "$1: exit status $3, expected $2"; }
expect_match() { grep -qF -- "$3" <<<"$2" && ok || { fail "$1: missing '$3' in:"; head -5 <<<"$2"; }; }

export GIT_CONFIG_NOSYSTEM=1 HOME="$tmp/home"
unset IBSYNC_GIT_TOKEN GIT_TOKEN IBSYNC_GIT_USERNAME
mkdir -p "$HOME"
all="$tmp/all-output" # every output of ibsync, searched for secrets at the end

# validate NAME URL ARGS...: runs `ibsync validate` on the golden AMI example
# of URL, leaving its output in $out and its exit status in $status.
# Under LeakSanitizer, ssh:// runs ignore libgit2 1.5.1's own leaks at every
# SSH connection (see tests/data/source/lsan-libgit2-ssh.supp).
validate() {
    local name=$1 url=$2 lsan=${LSAN_OPTIONS:-}
    shift 2
    case $url in
    ssh://*)
        # Full stacks: libgit2's frames stop the fast unwinder before the frame matched.
        lsan="suppressions=$src/tests/data/source/lsan-libgit2-ssh.supp:print_suppressions=0"
        lsan="$lsan:fast_unwind_on_malloc=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
        ;;
    esac
    out=$(LSAN_OPTIONS=$lsan timeout 30 "$ibsync" validate --repo "$url" --ref main \
        --path examples/linux-golden-ami --state-dir "$tmp/state" "$@" 2>&1)
    status=$?
    printf '== %s\n%s\n' "$name" "$out" >>"$all"
}

# wait_port PORT PID: until PORT accepts connections (PID must stay alive).
wait_port() {
    local _
    for _ in $(seq 1 250); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.02
    done
    return 1
}

# The repository: the examples of this source tree, one commit on main.
mkdir -p "$tmp/work" "$tmp/srv"
cp -r "$src/examples" "$tmp/work/"
git -C "$tmp/work" init -q -b main
git -C "$tmp/work" add -A
git -C "$tmp/work" -c user.name=t -c user.email=t@example.com commit -qm examples
git clone -q --bare "$tmp/work" "$tmp/srv/repo.git"
commit=$(git -C "$tmp/work" rev-parse --short=12 HEAD)

# ---- (a) smart HTTP with basic auth ----
token="tok-$RANDOM$RANDOM-$$-secret"
printf '%s\n' "$token" >"$tmp/token"
cp "$tmp/token" "$tmp/server-token"
printf 'not-the-token\n' >"$tmp/bad-token"
python3 "$src/tests/data/source/git-http-auth-server.py" "$tmp/srv" x-access-token \
    "$tmp/server-token" "$tmp/http-port" 2>"$tmp/http.log" &
pids+=($!)
for _ in $(seq 1 250); do [ -s "$tmp/http-port" ] && break; sleep 0.02; done
port=$(cat "$tmp/http-port" 2>/dev/null)
if [ -z "$port" ] || ! wait_port "$port" "${pids[0]}"; then
    echo "FAIL: the HTTP server did not start:"; cat "$tmp/http.log"; exit 1
fi
url="http://127.0.0.1:$port/repo.git"

validate http-token-file "$url" --git-token-file "$tmp/token"; expect_status http-token-file 0 $status
expect_match http-token-file "$out" "$url@main:examples/linux-golden-ami (commit $commit): valid"
validate http-wrong-token "$url" --git-token-file "$tmp/bad-token"; expect_status http-wrong-token 1 $status
expect_match http-wrong-token "$out" "ibsync: error: authentication failed for $url: the server rejected the token for user \"x-access-token\"; check --git-token-file"
validate http-no-token "$url"; expect_status http-no-token 1 $status
expect_match http-no-token "$out" "ibsync: error: authentication failed for $url: the server requires credentials and no token was given; give a token with --git-token-file or IBSYNC_GIT_TOKEN"
validate http-missing-file "$url" --git-token-file "$tmp/nope"; expect_status http-missing-file 1 $status
expect_match http-missing-file "$out" "cannot read token file \"$tmp/nope\": No such file or directory"

# The environment, when no file is given; the file wins over it.
IBSYNC_GIT_TOKEN=$token validate http-env "$url"; expect_status http-env 0 $status
GIT_TOKEN=$token validate http-git-token "$url"; expect_status http-git-token 0 $status
IBSYNC_GIT_TOKEN=wrong GIT_TOKEN=$token validate http-env-order "$url"; expect_status http-env-order 1 $status
expect_match http-env-order "$out" "the server rejected the token for user \"x-access-token\"; check IBSYNC_GIT_TOKEN"
IBSYNC_GIT_TOKEN=wrong validate http-file-wins "$url" --git-token-file "$tmp/token"; expect_status http-file-wins 0 $status

# The user name: --git-username, else IBSYNC_GIT_USERNAME.
validate http-username "$url" --git-token-file "$tmp/token" --git-username robot; expect_status http-username 1 $status
expect_match http-username "$out" "the server rejected the token for user \"robot\"; check --git-token-file"
IBSYNC_GIT_USERNAME=robot2 validate http-env-username "$url" --git-token-file "$tmp/token"; expect_status http-env-username 1 $status
expect_match http-env-username "$out" "for user \"robot2\""
grep -q 'user=robot2$' "$tmp/http.log" && ok || fail "http-env-username: the server never saw user robot2"

# A token embedded in the URL keeps working, and is shown nowhere.
validate http-url-token "http://x-access-token:$token@127.0.0.1:$port/repo.git"; expect_status http-url-token 0 $status
expect_match http-url-token "$out" "$url@main:examples/linux-golden-ami (commit $commit): valid"

# The token file is read by every run: rotated on both sides.
token2="tok-rotated-$RANDOM$RANDOM-secret"
printf '%s\n' "$token2" >"$tmp/server-token"
validate http-rotated-old "$url" --git-token-file "$tmp/token"; expect_status http-rotated-old 1 $status
printf '%s\n' "$token2" >"$tmp/token"
validate http-rotated "$url" --git-token-file "$tmp/token"; expect_status http-rotated 0 $status

# ---- (b) SSH with keys and known_hosts ----
sshd=$(command -v sshd || { [ -x /usr/sbin/sshd ] && echo /usr/sbin/sshd; })
skipped=0
if [ -z "$sshd" ]; then
    echo "SKIP: ssh part: sshd not found (install openssh-server)"
    skipped=1
else
    mkdir -p "$tmp/ssh"
    sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sh "$src/tests/data/source/sshd-setup.sh" "$tmp/ssh" "$sport"
    "$sshd" -D -e -f "$tmp/ssh/sshd_config" 2>"$tmp/sshd.log" &
    pids+=($!)
    if ! wait_port "$sport" "${pids[1]}"; then
        echo "FAIL: sshd did not start:"; cat "$tmp/sshd.log"; exit 1
    fi
    surl="ssh://$(id -un)@127.0.0.1:$sport$tmp/srv/repo.git"
    shown="ssh://127.0.0.1:$sport$tmp/srv/repo.git"
    K="$tmp/ssh"

    validate ssh-key "$surl" --git-ssh-key "$K/id_plain" --git-known-hosts "$K/known_hosts"
    expect_status ssh-key 0 $status
    expect_match ssh-key "$out" "$shown@main:examples/linux-golden-ami (commit $commit): valid"
    validate ssh-hashed "$surl" --git-ssh-key "$K/id_plain" --git-known-hosts "$K/known_hosts_hashed"
    expect_status ssh-hashed 0 $status
    validate ssh-passphrase "$surl" --git-ssh-key "$K/id_locked" \
        --git-ssh-key-passphrase-file "$K/passphrase" --git-known-hosts "$K/known_hosts"
    expect_status ssh-passphrase 0 $status
    printf 'xyzzy-not-the-passphrase\n' >"$tmp/wrong-passphrase"
    validate ssh-bad-passphrase "$surl" --git-ssh-key "$K/id_locked" \
        --git-ssh-key-passphrase-file "$tmp/wrong-passphrase" --git-known-hosts "$K/known_hosts"
    expect_status ssh-bad-passphrase 1 $status
    expect_match ssh-bad-passphrase "$out" "authentication failed for $shown: SSH key \"$K/id_locked\" cannot be used: "
    expect_match ssh-bad-passphrase "$out" "; check --git-ssh-key and --git-ssh-key-passphrase-file"
    validate ssh-stranger "$surl" --git-ssh-key "$K/id_stranger" --git-known-hosts "$K/known_hosts"
    expect_status ssh-stranger 1 $status
    expect_match ssh-stranger "$out" "authentication failed for $shown: the server rejected SSH key \"$K/id_stranger\" for user \"$(id -un)\"; check --git-ssh-key"

    # Host keys: unknown and changed keys are refused before authenticating.
    validate ssh-unknown-host "$surl" --git-ssh-key "$K/id_plain" --git-known-hosts "$K/known_hosts_elsewhere"
    expect_status ssh-unknown-host 1 $status
    expect_match ssh-unknown-host "$out" "host key verification failed for $shown: [127.0.0.1]:$sport is not in known_hosts file \"$K/known_hosts_elsewhere\" (the server's key is ssh-ed25519 SHA256:"
    validate ssh-changed-host "$surl" --git-ssh-key "$K/id_plain" --git-known-hosts "$K/known_hosts_changed"
    expect_status ssh-changed-host 1 $status
    expect_match ssh-changed-host "$out" "does not match line 1 of known_hosts file \"$K/known_hosts_changed\": the key changed, or someone is intercepting the connection"

    # The default known_hosts is ~/.ssh/known_hosts.
    validate ssh-default-missing "$surl" --git-ssh-key "$K/id_plain"
    expect_status ssh-default-missing 1 $status
    expect_match ssh-default-missing "$out" "cannot read known_hosts file \"$HOME/.ssh/known_hosts\": No such file or directory"
    mkdir -p "$HOME/.ssh"
    cp "$K/known_hosts" "$HOME/.ssh/known_hosts"
    validate ssh-default "$surl" --git-ssh-key "$K/id_plain"; expect_status ssh-default 0 $status

    # No user in the URL: --git-username.
    validate ssh-username "ssh://127.0.0.1:$sport$tmp/srv/repo.git" --git-ssh-key "$K/id_plain" \
        --git-username "$(id -un)"
    expect_status ssh-username 0 $status
fi

# No secret anywhere: outputs, the state directory (git cache included).
for secret in "$token" "$token2" "correct horse battery staple" "xyzzy-not-the-passphrase"; do
    if grep -qF -- "$secret" "$all"; then fail "secret '$secret' printed:"; grep -F -- "$secret" "$all" | head -3; else ok; fi
    if grep -rqaF -- "$secret" "$tmp/state"; then fail "secret '$secret' stored in: $(grep -rlaF -- "$secret" "$tmp/state" | head -3)"; else ok; fi
done
[ -d "$tmp/state/git" ] && ok || fail "no git cache under $tmp/state"

echo "git_auth: $pass passed, $fails failed"
[ "$fails" -eq 0 ] || exit 1
[ "$skipped" -eq 0 ] || exit 77
exit 0
