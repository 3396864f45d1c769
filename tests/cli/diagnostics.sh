#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# diagnostics.sh — the diagnostic reads from the outside, on fixture hosts: `vgpuctl sel`
# where there is no BMC (exit 1 and a message that says why, table or --json; the SEL itself
# is read from QEMU's emulated BMC in tests/vm/scenarios/45-ipmi.sh).
# Needs VGPUCTL, FIXTURES and NVML_DOUBLE (set by tests/meson.build).
set -uo pipefail

failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}
# run HOST ARGS...: vgpuctl on a fixture host; stdout, stderr and rc land in $tmp
run() {
        local host=$1
        shift
        VGPU_ROOT="$FIXTURES/$host" LD_LIBRARY_PATH="$NVML_DOUBLE" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}
expect_rc() {
        [[ $rc == "$1" ]] || fail "$2: exit $rc, expected $1 (stderr: $(head -c 300 "$tmp/err"))"
}
expect_err() {
        grep -qF -- "$1" "$tmp/err" || fail "$2: stderr lacks '$1': $(head -c 300 "$tmp/err")"
}

# --- sel: no BMC (no dev/ipmi0 in the fixture) ---
for json in "" --json; do
        run nvidia-mdev sel $json
        expect_rc 1 "sel $json without a BMC"
        expect_err "sel: no BMC to ask: $FIXTURES/nvidia-mdev/dev/ipmi0 does not exist" "sel $json without a BMC"
        expect_err "modprobe ipmi_devintf" "sel $json without a BMC: the remedy"
        [[ -s $tmp/out ]] && fail "sel $json without a BMC: stdout not empty: $(head -c 200 "$tmp/out")"
done
run nvidia-mdev sel extra
expect_rc 2 "sel takes no argument"

if ((failures)); then
        echo "diagnostics: $failures failure(s)" >&2
        exit 1
fi
echo "diagnostics: ok"
