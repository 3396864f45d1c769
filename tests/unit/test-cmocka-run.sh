#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-cmocka-run.sh — a skipped cmocka case is counted and shown, not passed silently: runs
# cmocka-run.py on cmocka-skip-demo (cases that pass, skip or fail as asked) and checks its
# summary, the skipped cases named with their reasons, and its exit code (77, meson's SKIP,
# only when every case skipped); then scripts/test-counts.py, which check.sh uses, on a meson
# test log holding those runs.
# Needs CMOCKA_RUN, SKIP_DEMO and TEST_COUNTS (set by tests/meson.build).
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }

# run MODE: the wrapper on the demo; its output in $tmp/MODE, its exit code in rc
run() {
        "$CMOCKA_RUN" "$SKIP_DEMO" "$1" >"$tmp/$1" 2>&1
        rc=$?
}
expect_rc() { [[ $rc == "$2" ]] && ok || bad "$1: exit $rc, expected $2: $(cat "$tmp/$1")"; }
has_line() { grep -qxF -- "$2" "$tmp/$1" && ok || bad "$1: no line '$2' in: $(cat "$tmp/$1")"; }

# one case passes, one skips: the test passes, and the skip is counted and named with its reason
run some
expect_rc some 0
has_line some "cmocka: 1 passed, 0 failed, 1 skipped"
has_line some "cmocka skipped: case_skips: skipped: no widget on this host"
[[ $(grep -c "^cmocka skipped: " "$tmp/some") == 1 ]] && ok || bad "some: not exactly one skipped case named"
# cmocka's own output still reaches the log
has_line some "[  SKIPPED ] case_skips"

# every case skipped: nothing was checked, so meson must say SKIP, not OK
run all
expect_rc all 77
has_line all "cmocka: 0 passed, 0 failed, 2 skipped"
has_line all "cmocka skipped: case_by_mode: skipped: the mode says so"
has_line all "cmocka skipped: case_skips: skipped: no widget on this host"

# a failure stays a failure (cmocka's count of failed cases), skips or not
run fail
expect_rc fail 1
has_line fail "cmocka: 0 passed, 1 failed, 1 skipped"

# a program that is not there: an error, not a skip
"$CMOCKA_RUN" "$tmp/nonexistent" >"$tmp/missing" 2>&1
rc=$?
[[ $rc != 0 && $rc != 77 ]] && ok || bad "a missing program exits $rc"

# check.sh's counting: meson's log of the three runs above and of a script that skipped (exit 77)
python3 - "$tmp" >"$tmp/testlog.json" <<'PY'
import json, sys
d = sys.argv[1]
for name, mode, result, s in [("demo-some", "some", "OK", 0.5), ("demo-all", "all", "SKIP", 0.25),
                              ("demo-fail", "fail", "FAIL", 12.0)]:
    print(json.dumps({"name": name, "result": result, "duration": s, "stdout": open(f"{d}/{mode}").read()}))
print(json.dumps({"name": "cli-x", "result": "SKIP", "duration": 3.0, "stdout": "SKIP: no libvirtd\n"}))
print(json.dumps({"name": "cli-y", "result": "OK", "duration": 148.04, "stdout": "y: 3 passed, 0 failed\n"}))
PY
"$TEST_COUNTS" "$tmp/testlog.json" >"$tmp/counts" 2>&1 || bad "test-counts.py failed: $(cat "$tmp/counts")"
# passed: demo-some and cli-y; failed: demo-fail; skipped: 1 + 2 + 1 cmocka cases and cli-x
has_line counts "2 1 5"
has_line counts "skipped: demo-some: case_skips: skipped: no widget on this host"
has_line counts "skipped: demo-all: case_by_mode: skipped: the mode says so"
has_line counts "skipped: cli-x"
[[ $(grep -c '^skipped: ' "$tmp/counts") == 5 ]] && ok || bad "counts: not 5 skipped lines: $(cat "$tmp/counts")"
# check.sh's list of the slowest tests: the N longest, slowest first, with their verdicts
"$TEST_COUNTS" --slowest 3 "$tmp/testlog.json" >"$tmp/slowest" 2>&1 || bad "test-counts.py --slowest failed: $(cat "$tmp/slowest")"
printf '  148.0 s  cli-y (OK)\n   12.0 s  demo-fail (FAIL)\n    3.0 s  cli-x (SKIP)\n' >"$tmp/slowest.expected"
cmp -s "$tmp/slowest" "$tmp/slowest.expected" && ok ||
        bad "slowest: $(cat "$tmp/slowest"), expected: $(cat "$tmp/slowest.expected")"

echo "cmocka-run: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
