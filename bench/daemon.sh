#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# daemon.sh — vgpud's costs on the generated large host (16 GPUs x 32 VFs, 24 types per VF:
# 12,288 types, 256 instances) with the NVML double serving the 16 GPUs:
#   1. GET /metrics latency over loopback TCP (keep-alive), N requests: median, p95, max
#      (target: under 5 ms), and the body's size and series count; the text is rendered once
#      per poll or event and then copied, so the render time after a poll is printed too;
#   2. GET /v1/gpus and /v1/health?checks=false latency for comparison (these scan the host);
#   3. idle CPU at the default poll interval (10 s), from /proc/PID/stat over IDLE seconds
#      (target: under 0.5 %), and the cost of one poll.
# Prints one line per number. Needs a build (ninja -C build); runs unprivileged.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
VGPUD=${VGPUD:-$BUILD/src/vgpud/vgpud}
NVML_DOUBLE=${NVML_DOUBLE:-$BUILD/tests/nvml-double}
N=${N:-500}
IDLE=${IDLE:-60}
[[ -x $VGPUD ]] || { echo "daemon.sh: build first ($VGPUD missing)" >&2; exit 1; }

base=/tmp; [[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm
work=$(mktemp -d $base/vgpud-bench.XXXXXX)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 tests/fixtures/gen-hosts.py --large "$work/host" --gpus 16 --vfs 32 --types 24 --instances 256 >/dev/null
# NVML readings for the 16 physical GPUs (the generator writes none)
python3 - "$work/host" <<'PY'
import os, sys
root = sys.argv[1]
pfs = sorted(d for d in os.listdir(root + "/sys/bus/pci/devices")
             if os.path.exists("%s/sys/bus/pci/devices/%s/sriov_totalvfs" % (root, d)))
with open(root + "/nvml.conf", "w") as f:
    f.write("driver_version=550.127.06\n")
    for i, bdf in enumerate(pfs):
        for k, v in (("bdf", bdf), ("name", "NVIDIA A16"), ("uuid", "GPU-%08d-0000-0000-0000-000000000000" % i),
                     ("memory_total", 16 << 30), ("memory_used", 4 << 30), ("temperature", 40 + i), ("temp_slowdown", 90),
                     ("temp_shutdown", 95), ("power_mw", 30000 + i), ("power_limit_mw", 62000), ("persistence", 1),
                     ("virtualization_mode", 3)):
            f.write("gpu.%d.%s=%s\n" % (i, k, v))
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$port" >"$work/vgpud.conf"
VGPU_ROOT=$work/host LD_LIBRARY_PATH=$NVML_DOUBLE "$VGPUD" --config "$work/vgpud.conf" 2>"$work/vgpud.log" &
pid=$!
sock=$work/host/run/vgpud/vgpud.sock
for _ in $(seq 200); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { echo "daemon.sh: vgpud did not start: $(cat "$work/vgpud.log")" >&2; exit 1; }

python3 - "$port" "$sock" "$N" <<'PY'
import http.client, socket, statistics, sys, time
port, sock, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sock)

def bench(conn, path, n):
    times, body = [], b""
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, (path, r.status)
    times.sort()
    return times, body

t, body = bench(http.client.HTTPConnection("127.0.0.1", port), "/metrics", n)
series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
print("metrics: %d requests, median %.2f ms, p95 %.2f ms, max %.2f ms; %d bytes, %d series (target < 5 ms)"
      % (n, statistics.median(t), t[int(len(t) * 0.95)], t[-1], len(body), series))
for path, k in (("/v1/gpus", 50), ("/v1/health?checks=false", 200), ("/v1/types", 10)):
    t, body = bench(Unix("localhost"), path, k)
    print("%s: %d requests, median %.2f ms, p95 %.2f ms; %d bytes" % (path, k, statistics.median(t), t[int(len(t) * 0.95)], len(body)))
PY

# idle CPU: the requests above are over; let the loop settle, then count only polls
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
sleep "$IDLE"
t1=$(ticks); s1=$(date +%s.%N)
python3 -c "
cpu = ($t1 - $t0) / $hz; wall = $s1 - $s0
print('idle: %.2f s CPU in %.1f s at the default 10 s poll interval = %.3f %% of one core (target < 0.5 %%)' % (cpu, wall, 100 * cpu / wall))"
curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null | awk '
        /^vgpud_last_poll_duration_seconds/ {printf "one poll (scan + telemetry): %.1f ms wall\n", $2 * 1000}
        /^vgpud_metrics_render_seconds/ {printf "rendering /metrics after a poll (uncached): %.2f ms\n", $2 * 1000}' || true
