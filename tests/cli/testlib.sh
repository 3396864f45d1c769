# SPDX-License-Identifier: LGPL-2.1-or-later
# testlib.sh — what every tests/cli script shares; each sources it first:
#     source "$(dirname "$0")/testlib.sh"
# It gives a temporary directory $tmp (removed at exit, after the commands given to at_exit),
# pass/fail counting (ok, bad, check), the usual expectations on a vgpuctl run (V, expect, has),
# a copy of a fixture host to write to (fixture_copy), a whole-script skip (exit 77, meson's SKIP)
# and the closing "NAME: N passed, M failed" line with the script's exit status (summary).
# Scripts keep their own helpers for what only they check.
set -uo pipefail

test_name=$(basename "$0" .sh)
passed=0 failed=0
tmp=$(mktemp -d)
testlib_at_exit=()

# at_exit COMMAND: run COMMAND (eval'd) at exit, before $tmp is removed; last registered, first run
at_exit() { testlib_at_exit=("$1" "${testlib_at_exit[@]}"); }
testlib_exit() {
        local c
        for c in "${testlib_at_exit[@]}"; do
                eval "$c"
        done
        rm -rf "$tmp"
}
trap testlib_exit EXIT

# ok: one check passed. bad WHAT...: one check failed, WHAT said on stderr. Both return 0, so
# `CONDITION && ok || bad "..."` counts exactly one of them.
ok() { passed=$((passed + 1)); }
bad() {
        echo "FAIL: $*" >&2
        failed=$((failed + 1))
        return 0
}
# check WHAT COMMAND...: ok if COMMAND succeeds, else bad WHAT
check() { if "${@:2}"; then ok; else bad "$1"; fi; }

# A helper that does not exist (renamed here, or used by a script written against an older copy
# of these helpers) must fail the script, not print "command not found" and let the check pass
# uncounted. bash runs this handler in a subshell, so the failure goes to a file summary counts.
command_not_found_handle() {
        echo "FAIL: $1: command not found" >&2
        echo "$1" >>"$tmp/.testlib-not-found"
        return 127
}

# skip WHY...: the whole script cannot run here; meson reports SKIP and check.sh lists WHY
skip() {
        echo "SKIP: $*"
        exit 77
}

# fixture_copy NAME [DEST]: a writable copy of tests/fixtures/hosts/NAME at DEST ($tmp/host)
fixture_copy() { cp -a "$FIXTURES/$1" "${2:-$tmp/host}"; }

# V ARGS...: the built vgpuctl on the host tree $tmp/host (a fixture_copy), with the NVML double
# when the script set nvml=1 (else no NVML, as meson's environment has it); stdout and stderr
# land in $tmp/out and $tmp/err, the exit status in $rc
V() {
        local libs=${LD_LIBRARY_PATH:-}
        [[ ${nvml:-0} == 1 ]] && libs=$NVML_DOUBLE
        VGPU_ROOT="$tmp/host" LD_LIBRARY_PATH="$libs" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}

# expect RC WHAT: the last run exited RC
expect() { [[ $rc == "$1" ]] && ok || bad "$2: exit $rc, expected $1 ($(head -c 400 "$tmp/err"))"; }

# has FILE TEXT WHAT: $tmp/FILE (out, err, ...) contains TEXT
has() { grep -qF -- "$2" "$tmp/$1" && ok || bad "$3: no '$2' in: $(head -c 600 "$tmp/$1")"; }

# summary: the closing line, and the script's status (0 when nothing failed)
summary() {
        if [[ -s $tmp/.testlib-not-found ]]; then
                failed=$((failed + $(wc -l <"$tmp/.testlib-not-found")))
        fi
        echo "$test_name: $passed passed, $failed failed"
        [[ $failed -eq 0 ]]
}
