# Assertions shared by the reconciler and client scenarios (sourced):
#   expect_status NAME WANT GOT, expect_eq NAME WANT GOT, expect_match NAME TEXT NEEDLE,
#   ok, fail MESSAGE, check_summary (prints "N passed, M failed"; returns 1 on failures).
pass=0
fails=0
ok() { pass=$((pass + 1)); }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_status() { [ "$2" = "$3" ] && ok || fail "$1: exit status $3, expected $2"; }
expect_eq() { [ "$2" = "$3" ] && ok || fail "$1: got '$3', expected '$2'"; }
expect_match() { grep -qF -- "$3" <<<"$2" && ok || { fail "$1: missing '$3' in:"; head -20 <<<"$2"; }; }
check_summary() {
    echo "$pass passed, $fails failed"
    [ "$fails" -eq 0 ]
}
