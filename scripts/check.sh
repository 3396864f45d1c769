#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# check.sh — every test suite, in order of cost: unit + CLI tests, the same under ASan+UBSan,
# the Debian packages, then the real-kernel VM suite; the ASan+UBSan build, the packages' build
# and the VM guest's kernel are made beside the unit tests, at the lowest priority. Each step ends
# with the time it took ("== NAME: W s, CPU C s": wall clock, and the CPU its processes used,
# which other work on the machine does not inflate), each meson run with its 10 slowest tests.
# Ends with the cases that were skipped, each with its reason, and one "check: N passed, M
# failed, K skipped" line.
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

# cpu_ms=CPU milliseconds (user + system) of this shell's children that have ended, from `times`,
# which must run in this shell: a $(...) subshell has no children yet
times_file=$(mktemp)
trap 'rm -f "$times_file"' EXIT        # (and $bg, below)
cpu_now() {
        local user sys t sec ms=0
        times >"$times_file"
        { read -r _; read -r user sys; } <"$times_file"
        for t in "$user" "$sys"; do  # 1m2.345s
                sec=${t#*m} && sec=${sec%s}
                ms=$((ms + ${t%%m*} * 60000 + ${sec%.*} * 1000 + 10#${sec#*.}))
        done
        cpu_ms=$ms
}
timed_since() {  # timed_since NAME START_NS START_CPU_MS
        local end_ns
        end_ns=$(date +%s%N)
        cpu_now
        echo "== $1: $(((end_ns - $2 + 500000000) / 1000000000)) s, CPU $(((cpu_ms - $3 + 500) / 1000)) s"
}

step() {
        local name=$1 rc start_ns start_cpu; shift
        echo "== $name"
        start_ns=$(date +%s%N); cpu_now; start_cpu=$cpu_ms
        "$@"; rc=$?
        timed_since "$name" "$start_ns" "$start_cpu"
        if [[ $rc -ne 0 ]]; then failures+=("$name"); return 1; fi
}

# where a meson run's time went: its slowest tests
slowest() {
        echo "== the 10 slowest tests${2:+ ($2)}:"
        python3 scripts/test-counts.py --slowest 10 "$1/meson-logs/testlog.json" || true
}
check_start_ns=$(date +%s%N); cpu_now; check_start_cpu=$cpu_ms

# every suite must be built: a missing dependency fails here instead of skipping tests silently
build_all() {
        meson configure "$BUILD" -Dtests=enabled -Ddaemon=enabled >/dev/null && ninja -C "$BUILD" >/dev/null
}
step "build (every suite enabled)" build_all ||
        { echo "check: the build with every suite enabled failed"; echo "check: 0 passed, 1 failed, 0 skipped"; exit 1; }
build_asan() {
        if [[ ! -f $ASAN_BUILD/build.ninja ]]; then
                meson setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
                        -Dtests=enabled -Ddaemon=enabled >/dev/null || return
        fi
        ninja -C "$ASAN_BUILD"
}

# What needs no test to have run is done beside the normal build's tests, which leave a core idle
# much of the time (they wait on daemons, etcd, podman, timeouts): the ASan+UBSan build, the VM
# guest's kernel and drivers (tests/vm/prepare.sh, cached in build/vm-lab) and the Debian
# packages (scripts/build-deb.sh), one after the other at the lowest CPU and I/O priority, so that
# the tests keep what they use. Each part leaves its output in $bg/NAME.log, its time in
# $bg/NAME.time and its exit status in $bg/NAME.rc; `await NAME` waits for it and shows them.
bg=$(mktemp -d)
trap 'rm -f "$times_file"; rm -rf "$bg"' EXIT
background() {
        local name=$1 rc start_ns start_cpu; shift
        start_ns=$(date +%s%N); cpu_now; start_cpu=$cpu_ms
        "$@" >"$bg/$name.log" 2>&1; rc=$?
        timed_since "$name (beside the tests)" "$start_ns" "$start_cpu" >"$bg/$name.time"
        echo "$rc" >"$bg/$name.rc"
}
(
        renice -n 19 -p "$BASHPID" >/dev/null; ionice -c 2 -n 7 -p "$BASHPID" 2>/dev/null
        background asan-build build_asan
        if [[ -x tests/vm/run.sh && "${SKIP_VM:-0}" != 1 ]]; then
                background vm-prepare bash -c 'tests/vm/deps.sh && tests/vm/prepare.sh'
        fi
        if [[ "${SKIP_DEB:-0}" != 1 ]]; then
                background deb-build scripts/build-deb.sh "$bg/deb"
        fi
) &
bg_pid=$!
await() {       # await NAME [LINES]: its output (the last LINES lines only, or none when it passed)
        while [[ ! -f $bg/$1.rc ]] && kill -0 "$bg_pid" 2>/dev/null; do sleep 1; done
        local rc
        rc=$(cat "$bg/$1.rc" 2>/dev/null || echo 1)
        if [[ -z ${2:-} ]]; then cat "$bg/$1.log"; elif [[ $rc != 0 ]]; then tail -n "$2" "$bg/$1.log"; fi
        cat "$bg/$1.time" 2>/dev/null
        return "$rc"
}

step "unit + cli tests" meson test -C "$BUILD" --print-errorlogs; count_meson "$BUILD"
slowest_normal=$(slowest "$BUILD")

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "build (ASan+UBSan)" await asan-build && {
        step "unit + cli tests (ASan+UBSan)" meson test -C "$ASAN_BUILD" --print-errorlogs
        count_meson "$ASAN_BUILD" ASan+UBSan
        slowest_asan=$(slowest "$ASAN_BUILD" ASan+UBSan)
}
unset ASAN_OPTIONS UBSAN_OPTIONS

# The Debian packages: built beside the tests (above), linted, installed into this machine and
# purged again. After the meson suites (it installs into /usr), alone; one test in the count.
# SKIP_DEB=1 leaves it out.
debs() { await deb-build 50 && DEB_BUILT=$bg/deb tests/packaging/deb.sh; }
if [[ "${SKIP_DEB:-0}" != 1 ]]; then
        if step "Debian packages" debs; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

if [[ -x tests/vm/run.sh && "${SKIP_VM:-0}" != 1 ]]; then
        # the guest's kernel and drivers prepared beside the tests; run.sh reuses them (or says why not)
        await vm-prepare 30 | sed 's/^/# /'
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

wait "$bg_pid"

# where the time went: the slowest meson tests of each build, and the whole run
[[ -z ${slowest_normal:-} ]] || echo "$slowest_normal"
[[ -z ${slowest_asan:-} ]] || echo "$slowest_asan"
timed_since "check (all steps)" "$check_start_ns" "$check_start_cpu"

# a skipped case checked nothing: say which, so that a skip no one expected is seen
[[ ${#skipped_cases[@]} -eq 0 ]] || printf '%s\n' "${skipped_cases[@]}"
[[ ${#failures[@]} -eq 0 ]] || echo "failed steps: ${failures[*]}"
echo "check: $passed passed, $failed failed, $skipped skipped"
[[ ${#failures[@]} -eq 0 && $failed -eq 0 ]]
