#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Records which driver entry points a CUDA runtime asks cuGetProcAddress for (name, cudaVersion,
# flags), by initializing it over the fake driver of a build tree (tests/shim/cudart-probe.c).
# The shim-cudart test checks that each request for a name the shim wraps comes back wrapped.
#   tests/shim/cudart-requests/record.sh BUILD_DIR LIBCUDART > tests/shim/cudart-requests/MAJOR.MINOR.txt
set -eu
build=$1 lib=$2
trace=$(mktemp)
trap 'rm -f "$trace"' EXIT
out=$(LD_LIBRARY_PATH="$build/tests/shim" FAKE_CUDA_TRACE="$trace" "$build/tests/shim/cudart-probe" "$lib")
echo "# $(basename "$(readlink -f "$lib")"): ${out%%:*}; recorded by record.sh over the fake driver"
echo "# name cudaVersion flags (1: legacy stream, 2: per-thread default stream)"
awk 'NF == 4 {print $1, $2, $3}' "$trace" | sort -u -k1,1 -k2,2n -k3,3n
