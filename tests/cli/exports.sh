#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# exports.sh — libvgpu.so exports exactly the symbols lib/libvgpu.sym lists, all named vgpu_*:
# internal helpers (sysfs_*, root_*, backend tables) must not leak into the ABI. vgpuctl and vgpud
# link libvgpu.so and compile none of its sources. Neither it nor vgpuctl NEEDs a library that only
# some commands use.
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
# every function the installed headers declare is exported; the code libvgpu shares with the
# shim (lib/slice/slice.h, slice-shm.h: not installed) and the shim's own headers define no
# vgpu_ name, since none of it is libvgpu's API
src=${SOURCE_ROOT:?}
declared=$(cat "$src"/lib/include/vgpu/*.h | grep -v 'static inline' | grep -oE '\bvgpu_[a-z0-9_]+\(' | tr -d '(' | sort -u)
if [[ -z $(comm -23 <(echo "$declared") <(echo "$listed")) ]]; then
        ok
else
        bad "declared in lib/include/vgpu but not exported:"; comm -23 <(echo "$declared") <(echo "$listed")
fi
[[ ! -e $src/lib/include/vgpu/slice-shm.h ]] && ok || bad "the slice regions' layout is installed (lib/include/vgpu/slice-shm.h)"
runtime=("$src"/lib/slice/slice.h "$src"/lib/slice/slice-shm.h "$src"/shim/*.h)
if grep -nE '^(struct|enum) vgpu_|^#define VGPU_SLICE|^[a-z].*[ *]vgpu_[a-z0-9_]+\(' "${runtime[@]}"; then
        bad "the slice runtime shared with the shim names things vgpu_ (above)"
else
        ok
fi
# the programs are users of libvgpu.so like any other: they need it, and carry none of its code
# (a copy of lib/basic compiled in, or the internal archive linked, would define these)
for prog in ${VGPUCTL:-} ${VGPUD:-}; do
        readelf -d "$prog" | grep -q 'NEEDED.*\[libvgpu\.so\.0\]' && ok || bad "$prog does not link libvgpu.so.0"
        inside=$(nm --defined-only "$prog" | awk '$3 ~ /^(root_prefix|root_path|sysfs_read_at|vgpu_host_scan|vgpu_error_set)$/ {print $3}')
        [[ -z $inside ]] && ok || bad "$prog has libvgpu's code compiled in: $inside"
done
# libvgpu.so and vgpuctl are loaded by every command: the optional libraries are dlopen'ed by
# the code that needs them (lib/basic/dlopen-util.h), never NEEDed, or each command would pay for
# them and what they pull in (libgcrypt, libcrypto, ...) at start. vgpud may link libsystemd.
for elf in "$lib" ${VGPUCTL:-}; do
        needed=$(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
        # libpci (with libudev), libyaml and zlib too: required by the package, yet used by few commands
        for so in libsystemd libkmod libsensors libvirt libxml2 libcurl libcurl-gnutls libipmimonitoring \
                libfreeipmi libnvidia-ml libpci libudev libyaml-0 libz; do
                if grep -q "^$so\.so" <<<"$needed"; then
                        bad "$elf NEEDs $so: load it with dlopen (lib/basic/dlopen-util.h)"
                else
                        ok
                fi
        done
done
# nor libm: its one use (rounding a temperature) cost every command a dozen page faults at start
readelf -d "$lib" | grep -q 'NEEDED.*\[libm\.so' && bad "$lib NEEDs libm.so" || ok
echo "exports: $(echo "$exported" | wc -l) symbols"
summary
