#!/usr/bin/env bash
# CLI contract: --help of every command, --version, usage errors exit 129 with
# a message, unknown commands. Usage: test_cli.sh IBSYNC SOURCE_DIR
set -u
ibsync=$1
fails=0
pass=0

check() { # name expected_status actual_status
    if [ "$2" = "$3" ]; then pass=$((pass + 1)); else
        echo "FAIL: $1: exit status $3, expected $2"; fails=$((fails + 1)); fi
}
contains() { # name haystack needle
    case "$2" in *"$3"*) pass=$((pass + 1)) ;; *)
        echo "FAIL: $1: output does not contain '$3':"; echo "$2" | head -5; fails=$((fails + 1)) ;; esac
}

out=$("$ibsync" --version 2>&1); check "--version" 0 $?
contains "--version" "$out" "ibsync 0."
contains "--version" "$out" "(commit "

out=$("$ibsync" --help 2>&1); check "--help" 0 $?
contains "--help" "$out" "usage: ibsync"
commands=$(echo "$out" | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1}')
[ -n "$commands" ] || { echo "FAIL: no commands listed in --help"; fails=$((fails + 1)); }

for c in $commands; do
    out=$("$ibsync" "$c" --help 2>&1); check "$c --help" 0 $?
    contains "$c --help" "$out" "usage: ibsync $c"
    out=$("$ibsync" help "$c" 2>&1); check "help $c" 0 $?
    contains "help $c" "$out" "usage: ibsync $c"
    out=$("$ibsync" "$c" --no-such-option 2>&1); check "$c --no-such-option" 129 $?
    contains "$c --no-such-option" "$out" "unknown option '--no-such-option'"
    contains "$c --no-such-option" "$out" "usage: ibsync $c"
done

out=$("$ibsync" 2>&1); check "no command" 129 $?
contains "no command" "$out" "usage: ibsync"
out=$("$ibsync" frobnicate 2>&1); check "unknown command" 129 $?
contains "unknown command" "$out" "'frobnicate' is not an ibsync command"
out=$("$ibsync" version extra 2>&1); check "version extra" 129 $?
out=$("$ibsync" validate a b 2>&1); check "validate two dirs" 129 $?
contains "validate two dirs" "$out" "unexpected argument 'b'"
out=$("$ibsync" validate --repo 2>&1); check "validate --repo without value" 129 $?
contains "validate --repo without value" "$out" "option '--repo' needs a value"
out=$("$ibsync" validate --ref main 2>&1); check "validate --ref without --repo" 129 $?
contains "validate --ref without --repo" "$out" "--ref and --path need --repo"
out=$("$ibsync" validate -x 2>&1); check "validate -x" 129 $?
contains "validate -x" "$out" "unknown option '-x'"

echo "$pass passed, $fails failed"
[ "$fails" -eq 0 ]
