#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# glibc-versions.sh — libvgpu-cuda.so is preloaded into containers, whose glibc may be as old as
# 2.28 (UBI 8; Debian 11 has 2.31, Ubuntu 20.04 2.31): no symbol it imports may be versioned
# newer than GLIBC_2.28, or the loader refuses it there (shim/glibc-compat.h). And the old
# homes of dlopen and the pthread calls (libdl.so.2, libpthread.so.0) must be needed by it.
# Usage: glibc-versions.sh LIBVGPU_CUDA_SO
set -uo pipefail
so=${1:?usage: glibc-versions.sh LIBVGPU_CUDA_SO}
command -v objdump >/dev/null || { echo "objdump (binutils) is needed"; exit 77; }
fail=0
# "GLIBC_2.34 dlopen" for every imported versioned symbol
newer=$(objdump -T "$so" | sed -n 's/.*(\?\(GLIBC_[0-9][0-9.]*\))\? \+\([^ ]*\)$/\1 \2/p' |
        awk '{ split(substr($1, 7), v, "."); if (v[1] > 2 || (v[1] == 2 && v[2] + 0 > 28)) print }' | sort -u)
if [[ -n $newer ]]; then
        echo "FAIL: $so imports symbols newer than GLIBC_2.28 (containers with an older glibc refuse it):"
        echo "$newer"
        fail=1
fi
count=$(objdump -T "$so" | grep -c 'GLIBC_')
[[ $count -gt 0 ]] || { echo "FAIL: no versioned glibc symbol found in $so: is objdump reading it?"; fail=1; }
needed=$(objdump -p "$so" | awk '$1 == "NEEDED" {print $2}')
for lib in libdl.so.2 libpthread.so.0; do
        grep -qx "$lib" <<<"$needed" || { echo "FAIL: $so does not need $lib (dlopen/pthread on glibc < 2.34)"; fail=1; }
done
[[ $fail -eq 0 ]] && echo "glibc-versions: $count versioned imports, none newer than GLIBC_2.28"
exit $fail
