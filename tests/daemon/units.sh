#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# units.sh — vgpud's unit, tmpfiles.d entry and example configuration install with
# `meson install`; the unit passes `systemd-analyze verify` (pointed at the built vgpud), is
# Type=notify with a watchdog and keeps /sys writable; the tmpfiles entry parses and makes
# /run/vgpud; the example configuration is valid.
set -uo pipefail
build=${MESON_BUILD_ROOT:?} src=${MESON_SOURCE_ROOT:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0
check() { if "${@:2}"; then pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi; }
DESTDIR=$tmp/dest meson install -C "$build" --no-rebuild --quiet >/dev/null 2>&1
unit=$(find "$tmp/dest" -name vgpud.service | head -1)
tmpfiles=$(find "$tmp/dest" -path '*tmpfiles.d/vgpud.conf' | head -1)
example=$(find "$tmp/dest" -path '*doc/vgpuctl/vgpud.conf' | head -1)
check "unit installed" test -n "$unit"
check "tmpfiles.d entry installed" test -n "$tmpfiles"
check "example configuration installed" test -n "$example"
check "vgpud installed in sbin" test -n "$(find "$tmp/dest" -path '*sbin/vgpud')"
check "unit runs the installed vgpud" grep -q "^ExecStart=/.*/sbin/vgpud$" "$unit"
check "Type=notify" grep -qx "Type=notify" "$unit"
check "watchdog" grep -q "^WatchdogSec=" "$unit"
check "reload is SIGHUP" grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit"
check "sysfs stays writable" grep -qx "ProtectKernelTunables=no" "$unit"
check "hardened" grep -qx "ProtectSystem=strict" "$unit"
sed "s#^ExecStart=[^ ]*#ExecStart=$build/src/vgpud/vgpud#" "$unit" >"$tmp/vgpud.service"
if command -v systemd-analyze >/dev/null; then
        out=$(systemd-analyze verify "$tmp/vgpud.service" 2>&1)
        check "systemd-analyze verify is clean: $out" test -z "$out"
        # the hardening leaves a low exposure score (systemd's scale: 0 safe .. 10 exposed)
        score=$(systemd-analyze security --offline=true "$tmp/vgpud.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
        echo "systemd-analyze security: ${score:-n/a}"
        [[ -n $score ]] && check "exposure $score is below 5 (OK)" awk -v s="$score" 'BEGIN { exit !(s < 5) }'

fi
if command -v systemd-tmpfiles >/dev/null; then
        mkdir -p "$tmp/root"
        check "tmpfiles entry applies" systemd-tmpfiles --create --root="$tmp/root" "$tmpfiles"
        check "tmpfiles makes /run/vgpud" test -d "$tmp/root/run/vgpud"
fi
check "example configuration is valid" "$build/src/vgpud/vgpud" --check-config --config "$example"
echo "daemon-units: $pass passed, $fail failed"
exit $fail
