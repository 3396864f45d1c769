#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# units.sh — the boot-restore unit and udev rule install with `meson install`, the unit passes
# `systemd-analyze verify` (pointed at the built vgpuctl), and the rule names the unit.
source "$(dirname "$0")/testlib.sh"
build=${MESON_BUILD_ROOT:?} src=${MESON_SOURCE_ROOT:?}
DESTDIR=$tmp meson install -C "$build" --no-rebuild --quiet >/dev/null 2>&1
unit=$(find "$tmp" -name vgpuctl-restore.service | head -1)
rule=$(find "$tmp" -name 90-vgpuctl.rules | head -1)
check "unit installed" test -n "$unit"
check "udev rule installed" test -n "$rule"
check "vgpuctl installed in sbin" test -n "$(find "$tmp" -path '*sbin/vgpuctl')"
check "unit runs apply --restore" grep -q "^ExecStart=/.*/vgpuctl apply --restore$" "$unit"
sed "s#^ExecStart=[^ ]*#ExecStart=$build/src/vgpuctl/vgpuctl#" "$unit" >"$tmp/vgpuctl-restore.service"
if command -v systemd-analyze >/dev/null; then
        check "systemd-analyze verify is clean" test -z "$(systemd-analyze verify "$tmp/vgpuctl-restore.service" 2>&1)"
fi
# the unit's conditions, evaluated by systemd on fixture trees (systemd-analyze condition has no
# --root: the paths get the tree's prefix): a host with only slice records (made by `slice
# create`, no host.yaml) must be restored too, an empty one not
if command -v systemd-analyze >/dev/null; then
        conditions() { sed -n "s#^\(Condition[A-Za-z]*=|\?\)/#\1$1/#p" "$unit"; }
        holds() { mapfile -t c < <(conditions "$1"); systemd-analyze condition "${c[@]}" >/dev/null 2>&1; }
        mkdir -p "$tmp/records-only/var/lib/vgpuctl/slices" "$tmp/yaml-only/var/lib/vgpuctl/slices" "$tmp/empty/var/lib/vgpuctl/slices"
        echo '{}' >"$tmp/records-only/var/lib/vgpuctl/slices/alice.json"
        echo 'version: 1' >"$tmp/yaml-only/var/lib/vgpuctl/host.yaml"
        check "unit has conditions" test -n "$(conditions /)"
        check "restore runs on a host with only slice records" holds "$tmp/records-only"
        check "restore runs on a host with only host.yaml" holds "$tmp/yaml-only"
        check "restore skipped on a host with neither" eval '! holds "$tmp/empty"'
fi
# every rule starts the unit (whether the kernel's uevents match the rules is proven on the real
# kernel by tests/vm/scenarios/50-udev.sh)
check "rules start the unit" test "$(grep -c '^ACTION==' "$rule")" -ge 2 -a \
        "$(grep '^ACTION==' "$rule" | grep -vc 'RUN+="/bin/systemctl --no-block start vgpuctl-restore.service"')" -eq 0
summary
