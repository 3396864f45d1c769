#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# slice-cdi.sh — what the CDI spec gives a slice's container so that --device
# vgpuctl.io/slice=NAME alone runs CUDA: the GPU's own node by the minor the driver's /proc file
# gives, nvidiactl, nvidia-uvm (and nvidia-uvm-tools when the host has it), and the driver's
# libraries that the host's ld.so.cache knows, read-only in /usr/local/nvidia/lib64 (where
# NVIDIA's CUDA images look). tests/containers/podman.sh runs the same spec in real containers.
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE, FAKE_CUDA_DIR (tests/meson.build).
source "$(dirname "$0")/testlib.sh"
nvml=1          # V runs vgpuctl with the NVML double
fixture_copy nvidia-baremetal
cdi=$tmp/host/etc/cdi/vgpuctl.yaml
# device nodes of a device, the spec-wide mounts (host -> container), one line each
nodes() { python3 -c "
import yaml; d = yaml.safe_load(open('$cdi'))
print(*[n['path'] for n in [x for x in d['devices'] if x['name'] == '$1'][0]['containerEdits']['deviceNodes']])"; }
mounts() { python3 -c "
import yaml; d = yaml.safe_load(open('$cdi'))
for m in (d.get('containerEdits') or {}).get('mounts', []): print(m['hostPath'], m['containerPath'], ','.join(m['options']))"; }

# the driver as Debian's packages install it, the GPU at minor 2, nvidia-uvm-tools present
drv=/usr/lib/x86_64-linux-gnu/nvidia/current
mkdir -p "$tmp/host$drv" "$tmp/host/proc/driver/nvidia/gpus/0000:3b:00.0" "$tmp/host/dev"
cp "$FAKE_CUDA_DIR/libcuda.so.1" "$tmp/host$drv/"
cp "$NVML_DOUBLE/libnvidia-ml.so.1" "$tmp/host$drv/"
printf 'Model: \t\t Tesla T4\nDevice Minor: \t 2\n' >"$tmp/host/proc/driver/nvidia/gpus/0000:3b:00.0/information"
touch "$tmp/host/dev/nvidia-uvm-tools"
echo "$drv" >"$tmp/host/etc/ld.so.conf"
have_cache=0
# ldconfig -r chroots: root only; the rest of the test runs without it
if [[ $(id -u) -eq 0 ]] && ldconfig -r "$tmp/host" 2>"$tmp/ldconfig.err"; then have_cache=1
else echo "# no ld.so.cache for the fixture (ldconfig -r needs root): the library checks are left out"; fi

V slice create alice --gpu 3b:00.0 --memory 64M; [[ $rc == 0 ]] && ok || bad "create alice: $(cat "$tmp/err")"
[[ $(nodes alice) == "/dev/nvidia2 /dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-uvm-tools" ]] && ok || bad "alice's nodes: $(nodes alice)"
if [[ $have_cache == 1 ]]; then
        want="$tmp/host$drv/libcuda.so.1 /usr/local/nvidia/lib64/libcuda.so.1 ro,nosuid,nodev,bind
$tmp/host$drv/libnvidia-ml.so.1 /usr/local/nvidia/lib64/libnvidia-ml.so.1 ro,nosuid,nodev,bind"
        [[ $(mounts) == "$want" ]] && ok || bad "driver library mounts: $(mounts) (want $want)"
fi
# the same spec whatever order: a restore rewrites it identically (tests/cli/slice-apply.sh)
python3 -c "import yaml; d = yaml.safe_load(open('$cdi')); assert d['cdiVersion'] == '0.3.0', d" && ok || bad "version: $(head -5 "$cdi")"

# a host without the driver's cache or uvm-tools: the slice works, the spec has none of them
rm -f "$tmp/host/etc/ld.so.cache" "$tmp/host/dev/nvidia-uvm-tools"
V slice create bob --gpu 3b:00.0 --memory 64M; [[ $rc == 0 ]] && ok || bad "create bob: $(cat "$tmp/err")"
[[ $(nodes bob) == "/dev/nvidia2 /dev/nvidiactl /dev/nvidia-uvm" ]] && ok || bad "bob's nodes: $(nodes bob)"
[[ -z $(mounts) ]] && ok || bad "mounts without a cache: $(mounts)"
# a cache that is no cache hides no slice
head -c 100 /dev/urandom >"$tmp/host/etc/ld.so.cache"
V slice create carol --gpu 3b:00.0 --memory 64M; [[ $rc == 0 ]] && ok || bad "create carol over a broken cache: $(cat "$tmp/err")"
python3 -c "open('$tmp/host/etc/ld.so.cache', 'wb').write(b'glibc-ld.so.cache1.1' + b'\\xff\\xff\\xff\\x7f' + bytes(24))"
V slice remove carol; [[ $rc == 0 ]] && ok || bad "remove carol over a cache claiming 2^31 entries: $(cat "$tmp/err")"
summary
