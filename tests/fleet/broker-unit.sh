#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# broker-unit.sh — vgpu-broker's unit installs with `meson install`, runs the installed program,
# passes `systemd-analyze verify` (pointed at the built broker) and keeps a low exposure score:
# the broker needs the network and its socket, no privilege.
set -uo pipefail
build=${MESON_BUILD_ROOT:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0
check() { if "${@:2}"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
DESTDIR=$tmp/dest meson install -C "$build" --no-rebuild --quiet >/dev/null 2>&1
unit=$(find "$tmp/dest" -name vgpu-broker.service | head -1)
check "unit installed" test -n "$unit"
check "vgpu-broker installed in sbin" test -n "$(find "$tmp/dest" -path '*sbin/vgpu-broker')"
check "unit runs the installed broker" grep -q "^ExecStart=/.*/sbin/vgpu-broker " "$unit"
check "Type=notify" grep -qx "Type=notify" "$unit"
check "no capabilities" grep -qx "CapabilityBoundingSet=" "$unit"
sed "s#^ExecStart=[^ ]*#ExecStart=$build/src/vgpu-broker/vgpu-broker#" "$unit" >"$tmp/vgpu-broker.service"
if command -v systemd-analyze >/dev/null; then
        out=$(systemd-analyze verify "$tmp/vgpu-broker.service" 2>&1)
        check "systemd-analyze verify is clean: $out" test -z "$out"
        score=$(systemd-analyze security --offline=true "$tmp/vgpu-broker.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        echo "systemd-analyze security: ${score:-n/a}"
        [[ -n $score ]] && check "exposure $score is below 2" awk -v s="$score" 'BEGIN { exit !(s < 2) }'
fi
echo "broker-unit: $pass passed, $fail failed"
exit $((fail > 0))
