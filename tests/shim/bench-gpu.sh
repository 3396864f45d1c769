#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench-gpu.sh — bench/gpu runs only where an NVIDIA GPU is lent, so CI keeps it from rotting:
# every script compiles, launch-latency.c builds from the tree and runs over the fake driver
# (natively and under the shim), and run.sh refuses clearly without a GPU.
set -uo pipefail
: "${MESON_SOURCE_ROOT:?}" "${FAKE_CUDA_DIR:?}" "${SHIM:?}" "${LAUNCH_LATENCY:?}"
cd "$MESON_SOURCE_ROOT"
checks=0 fails=0
ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)) fails=$((fails + 1)); echo "FAIL: $*"; }

for f in bench/gpu/*.py; do
        python3 -m py_compile "$f" 2>/tmp/bench-gpu.$$ && ok || fail "$f does not compile: $(cat /tmp/bench-gpu.$$)"
done
rm -f /tmp/bench-gpu.$$

# under ASan its runtime must come first in LD_PRELOAD (SHIM_PRELOAD_FIRST, as for the shim tests)
for preload in "" "${SHIM_PRELOAD_FIRST:+$SHIM_PRELOAD_FIRST:}$SHIM"; do
        out=$(LD_LIBRARY_PATH="$FAKE_CUDA_DIR" LD_PRELOAD="$preload" timeout 60 "$LAUNCH_LATENCY" 20 2>&1)
        [[ $out =~ launch_us_median=[0-9.]+\ .*bursts=20 ]] && ok || fail "launch-latency ${preload:+under the shim }printed: $out"
done

# without a GPU run.sh stops at once, saying why
if command -v nvidia-smi >/dev/null 2>&1; then
        echo "# nvidia-smi is here: run.sh's refusal is not checked"
else
        out=$(bench/gpu/run.sh 2>&1); rc=$?
        [[ $rc -ne 0 && $out == *"no nvidia-smi"* ]] && ok || fail "run.sh without a GPU: rc $rc, $out"
fi

echo "bench-gpu: $((checks - fails)) passed, $fails failed"
[[ $fails -eq 0 ]]
