#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# check.sh — every test suite, in order of cost: unit + CLI tests, the same under ASan+UBSan,
# then the real-kernel VM suite. Ends with the cases that were skipped, each with its reason, and
# one "check: N passed, M failed, K skipped" line.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
passed=0 failed=0 skipped=0 failures=() skipped_cases=()

# count a meson test run from its JSON log: meson's verdicts, and the cmocka cases that skipped
# inside a test meson calls OK (scripts/test-counts.py, tests/unit/cmocka-run.py)
count_meson() {
        local counts p f s line
        counts=$(python3 scripts/test-counts.py "$1/meson-logs/testlog.json") || { failed=$((failed + 1)); return; }
        read -r p f s <<<"$(head -1 <<<"$counts")"
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        while IFS= read -r line; do
                [[ -n $line ]] && skipped_cases+=("$line${2:+ ($2)}")
        done < <(tail -n +2 <<<"$counts")
}

step() {
        local name=$1; shift
        echo "== $name"
        if ! "$@"; then failures+=("$name"); return 1; fi
}

# every suite must be built: a missing dependency fails here instead of skipping tests silently
meson configure "$BUILD" -Dtests=enabled -Ddaemon=enabled >/dev/null && ninja -C "$BUILD" >/dev/null ||
        { echo "check: the build with every suite enabled failed"; echo "check: 0 passed, 1 failed, 0 skipped"; exit 1; }
step "unit + cli tests" meson test -C "$BUILD" --print-errorlogs; count_meson "$BUILD"

if [[ ! -f $ASAN_BUILD/build.ninja ]]; then
        meson setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
                -Dtests=enabled -Ddaemon=enabled >/dev/null
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "build (ASan+UBSan)" ninja -C "$ASAN_BUILD" && {
        step "unit + cli tests (ASan+UBSan)" meson test -C "$ASAN_BUILD" --print-errorlogs
        count_meson "$ASAN_BUILD" ASan+UBSan
}
unset ASAN_OPTIONS UBSAN_OPTIONS

# The Debian packages: built, linted, installed into this machine and purged again. After the meson
# suites (it installs into /usr), alone; one test in the count. SKIP_DEB=1 leaves it out.
if [[ "${SKIP_DEB:-0}" != 1 ]]; then
        if step "Debian packages" tests/packaging/deb.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

if [[ -x tests/vm/run.sh && "${SKIP_VM:-0}" != 1 ]]; then
        vmlog=$(mktemp)
        step "real-kernel VM suite" env VGPUCTL="$BUILD/src/vgpuctl/vgpuctl" tests/vm/run.sh 2>&1 | tee "$vmlog"
        [[ ${PIPESTATUS[0]} -eq 0 ]] || failures+=("real-kernel VM suite")
        line=$(grep -E '^vm: [0-9]+ passed, [0-9]+ failed' "$vmlog" | tail -1)
        if [[ -n $line ]]; then
                passed=$((passed + $(echo "$line" | awk '{print $2}')))
                failed=$((failed + $(echo "$line" | awk '{print $4}')))
        fi
        rm -f "$vmlog"
fi

# a skipped case checked nothing: say which, so that a skip no one expected is seen
[[ ${#skipped_cases[@]} -eq 0 ]] || printf '%s\n' "${skipped_cases[@]}"
[[ ${#failures[@]} -eq 0 ]] || echo "failed steps: ${failures[*]}"
echo "check: $passed passed, $failed failed, $skipped skipped"
[[ ${#failures[@]} -eq 0 && $failed -eq 0 ]]
