#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# testlib-selftest.sh — tests/cli/testlib.sh itself: scripts made for the purpose source it and
# their output, exit status and temporary directory are checked: counting and the summary line,
# the status (1 on any failure), check, expect and has, a helper that does not exist counted as
# a failure (not passed silently), skip's exit 77, at_exit's commands before $tmp goes.
source "$(dirname "$0")/testlib.sh"
lib=$(cd "$(dirname "$0")" && pwd)/testlib.sh

# script NAME BODY: a script sourcing testlib.sh, run; its stdout+stderr in $tmp/NAME.log, status in src
script() {
        printf 'source "%s"\n%s\n' "$lib" "$2" >"$tmp/$1.sh"
        bash "$tmp/$1.sh" >"$tmp/$1.log" 2>&1
        src=$?
}
log_has() { grep -qxF -- "$2" "$tmp/$1.log" && ok || bad "$1: no line '$2' in: $(cat "$tmp/$1.log")"; }

script counts 'ok; ok; bad "one thing"; check "true holds" true; check "false holds" false; summary'
[[ $src == 1 ]] && ok || bad "counts: exit $src, expected 1"
log_has counts "counts: 3 passed, 2 failed"
log_has counts "FAIL: one thing"
log_has counts "FAIL: false holds"

script clean 'ok; summary'
[[ $src == 0 ]] && ok || bad "clean: exit $src, expected 0"
log_has clean "clean: 1 passed, 0 failed"

# expect and has on a run's files, as V leaves them
script expectations 'rc=2; echo "vgpuctl: no such parent" >"$tmp/err"; echo "0000:3b:00.0" >"$tmp/out"
expect 2 "rc 2"; expect 0 "rc 0"; has out "3b:00.0" "out"; has err "parent" "err"; has out "5e:00.0" "missing"
summary'
log_has expectations "expectations: 3 passed, 2 failed"
log_has expectations "FAIL: rc 0: exit 2, expected 0 (vgpuctl: no such parent)"
log_has expectations "FAIL: missing: no '5e:00.0' in: 0000:3b:00.0"

# a helper that no longer exists: a failure, even where its check would have passed
script unknown 'true || fail "never called"; expect_rc 0 "an old helper"; ok; summary'
[[ $src == 1 ]] && ok || bad "unknown helper: exit $src, expected 1"
log_has unknown "FAIL: expect_rc: command not found"
log_has unknown "unknown: 1 passed, 1 failed"

# skip: meson's SKIP, with the reason
script skipping 'ok; skip "no widget here"; summary'
[[ $src == 77 ]] && ok || bad "skip: exit $src, expected 77"
log_has skipping "SKIP: no widget here"

# at_exit: last registered runs first, all before $tmp is removed, which it then is
script cleanup 'echo "$tmp" >"'"$tmp"'/cleanup.tmp"; at_exit "echo first-registered; ls -d \"\$tmp\" >/dev/null && echo tmp-still-there"; at_exit "echo second-registered"; summary'
[[ $(grep -E 'registered|still' "$tmp/cleanup.log" | tr '\n' ' ') == "second-registered first-registered tmp-still-there " ]] && ok ||
        bad "at_exit order: $(cat "$tmp/cleanup.log")"
[[ ! -e $(cat "$tmp/cleanup.tmp") ]] && ok || bad "the script's \$tmp was not removed"

summary
