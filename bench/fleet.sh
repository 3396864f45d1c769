#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fleet.sh — the fleet's costs side by side in one run (bench/fleet.py does the work): placements/s
# and p99 through 1 and 4 vgpu-brokers against a baseline serialized by a global etcd lock, conflicts
# per placement, host death -> GPUs no longer offered, etcd leader loss -> longest write pause,
# broker restart ready time and placement p99 with 1,000 synthetic hosts x 8 GPUs, broker RSS.
# Prints ratios and each target met / NOT met. Not a test: numbers depend on the machine.
#   N=2000 WORKERS=8 bench/fleet.sh [--only lock,b1,b4,b4p,death,leader,big] [--rate 600] [--hosts 25]
# Needs Debian's etcd (scripts/install-deps.sh --test) and a build (ninja -C build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export VGPU_BROKER=${VGPU_BROKER:-$BUILD/src/vgpu-broker/vgpu-broker}
[[ -x $VGPU_BROKER ]] || echo "fleet.sh: $VGPU_BROKER missing (build first): only the etcd-side numbers" >&2
exec python3 bench/fleet.py --broker "$VGPU_BROKER" "$@"
