#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# exports.sh — libvgpu.so exports exactly the symbols lib/libvgpu.sym lists, all named vgpu_*:
# internal helpers (sysfs_*, root_*, backend tables) must not leak into the ABI.
source "$(dirname "$0")/testlib.sh"
lib=${LIBVGPU:?} sym=${LIBVGPU_SYM:?}
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {sub(/@.*/, "", $3); print $3}' | grep -v '^LIBVGPU_' | sort)
listed=$(grep -oE '^[[:space:]]+vgpu_[a-z0-9_]+;' "$sym" | tr -d ' ;\t' | sort)
if [[ "$exported" == "$listed" ]]; then
        ok
else
        bad "exported symbols differ from $sym:"; diff <(echo "$listed") <(echo "$exported")
fi
if echo "$exported" | grep -v '^vgpu_'; then
        bad "exported symbols outside the vgpu_ namespace (above)"
else
        ok
fi
echo "exports: $(echo "$exported" | wc -l) symbols"
summary
