#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# check.sh — every test suite, in order of cost: unit + CLI tests, the same under ASan+UBSan,
# then the real-kernel VM suite. Ends with one "check: N passed, M failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
passed=0 failed=0 failures=()

# count a meson test run from its JSON log
count_meson() {
        local log=$1/meson-logs/testlog.json p f
        p=$(grep -c '"result": "OK"' "$log" || true)
        f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
        passed=$((passed + p)); failed=$((failed + f))
}

step() {
        local name=$1; shift
        echo "== $name"
        if ! "$@"; then failures+=("$name"); return 1; fi
}

# every suite must be built: a missing dependency fails here instead of skipping tests silently
meson configure "$BUILD" -Dtests=enabled -Ddaemon=enabled >/dev/null && ninja -C "$BUILD" >/dev/null ||
        { echo "check: the build with every suite enabled failed"; echo "check: 0 passed, 1 failed"; exit 1; }
step "unit + cli tests" meson test -C "$BUILD" --print-errorlogs; count_meson "$BUILD"

if [[ ! -f $ASAN_BUILD/build.ninja ]]; then
        meson setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
                -Dtests=enabled -Ddaemon=enabled >/dev/null
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "build (ASan+UBSan)" ninja -C "$ASAN_BUILD" && {
        step "unit + cli tests (ASan+UBSan)" meson test -C "$ASAN_BUILD" --print-errorlogs
        count_meson "$ASAN_BUILD"
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

[[ ${#failures[@]} -eq 0 ]] || echo "failed steps: ${failures[*]}"
echo "check: $passed passed, $failed failed"
[[ ${#failures[@]} -eq 0 && $failed -eq 0 ]]
