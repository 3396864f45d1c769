#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh — the software-slice benchmarks on a machine with an NVIDIA GPU (never in CI): builds
# the shim if needed, runs quota, shares, overhead and scrub (or the ones named), and ends with
# every RESULT line, PASS / FAIL against the targets of issue 5. About 10 minutes on an H100.
#   bench/gpu/run.sh [quota] [shares] [overhead] [scrub] [graphs]
set -uo pipefail
cd "$(dirname "$0")/../.."
export BUILD=${BUILD:-build}
command -v nvidia-smi >/dev/null || { echo "run.sh: no nvidia-smi: this needs an NVIDIA GPU" >&2; exit 1; }
python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null ||
        { echo "run.sh: python3 with a CUDA build of PyTorch is needed" >&2; exit 1; }
if [[ ! -f $BUILD/build.ninja ]]; then meson setup "$BUILD" >/dev/null || exit 1; fi
ninja -C "$BUILD" shim/libvgpu-cuda.so tests/shim/slice-admin >/dev/null || exit 1

nvidia-smi --query-gpu=name,driver_version,memory.total,virtualization_mode --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(quota shares overhead scrub graphs)
log=$(mktemp)
for p in "${parts[@]}"; do
        echo "== $p"
        python3 "bench/gpu/$p.py" 2>&1 | tee -a "$log"
done
echo "== summary"
grep '^RESULT' "$log"
fails=$(grep -c '^RESULT.* FAIL$' "$log")
rm -f "$log"
echo "bench/gpu: $fails target(s) missed"
[[ $fails -eq 0 ]]
