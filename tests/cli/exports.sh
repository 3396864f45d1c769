#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# exports.sh — libvgpu.so exports exactly the symbols lib/libvgpu.sym lists, all named vgpu_*:
# internal helpers (sysfs_*, root_*, backend tables) must not leak into the ABI.
set -uo pipefail
lib=${LIBVGPU:?} sym=${LIBVGPU_SYM:?}
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {sub(/@.*/, "", $3); print $3}' | grep -v '^LIBVGPU_' | sort)
listed=$(grep -oE '^[[:space:]]+vgpu_[a-z0-9_]+;' "$sym" | tr -d ' ;\t' | sort)
fail=0
if [[ "$exported" != "$listed" ]]; then
        echo "FAIL: exported symbols differ from $sym:"; diff <(echo "$listed") <(echo "$exported"); fail=1
fi
if echo "$exported" | grep -v '^vgpu_'; then
        echo "FAIL: exported symbols outside the vgpu_ namespace (above)"; fail=1
fi
n=$(echo "$exported" | wc -l)
echo "exports: $((fail == 0 ? 1 : 0)) passed, $fail failed ($n symbols)"
exit $fail
