#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# persistence.sh — host.yaml's `persistence: on|off` per GPU on a writable fixture copy with the
# NVML double: assert reports a GPU whose NVML mode differs, apply sets it through
# nvmlDeviceSetPersistenceMode (the double records it in nvml.conf) and a second apply does
# nothing; with nvidia-persistenced's unit installed apply enables it with the real
# `systemctl --root` (the multi-user.target.wants link), and assert reports it disabled again;
# a refused NVML call rolls back the GPUs set before it; bad values name FILE:LINE:COLUMN.
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE (tests/meson.build).
source "$(dirname "$0")/testlib.sh"
nvml=1          # V runs vgpuctl with the NVML double
mode() { grep "^gpu.$1.persistence=" "$tmp/host/nvml.conf" | tail -1 | cut -d= -f2; }
fixture_copy nvidia-mdev
sed -i 's/^gpu.1.persistence=1/gpu.1.persistence=0/' "$tmp/host/nvml.conf"

# the entries keep the fixture's instances: only persistence differs
cat >"$tmp/host.yaml" <<'EOF'
version: 1
gpus:
  - bdf: "0000:3b:00.0"
    persistence: on
    devices:
      - type: nvidia-232
        uuids: ["b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01", "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02"]
  - bdf: "0000:5e:00.0"
    persistence: on
    devices:
      - type: nvidia-233
        uuids: ["c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4"]
EOF
V assert -f "$tmp/host.yaml"; expect 1 "assert: 5e:00.0 has persistence off"
has out "+ persistence 0000:5e:00.0 on (now off)" "assert names the GPU and both modes"
[[ $(grep -c '^[-+]' "$tmp/out") == 1 ]] && ok || bad "assert: only the persistence differs: $(cat "$tmp/out")"
V assert -f "$tmp/host.yaml" --json; expect 1 "assert --json"
python3 -c "
import json,sys; p=json.load(open('$tmp/out'))
sys.exit(0 if [(a['action'], a['parent'], a['detail']) for a in p['actions']] == [('persistence', '0000:5e:00.0', 'on (now off)')] else 1)" \
    && ok || bad "assert --json: $(cat "$tmp/out")"
V apply -f "$tmp/host.yaml"; expect 0 "apply"
has out "set        0000:5e:00.0 on (now off)" "apply says what it set"
[[ $(mode 1) == 1 && $(mode 0) == 1 ]] && ok || bad "NVML mode after apply: $(mode 0) $(mode 1)"
V list --json; expect 0 "list"
python3 -c "
import json,sys; g=[g for g in json.load(open('$tmp/out'))['gpus'] if g['bdf']=='0000:5e:00.0'][0]
sys.exit(0 if g['nvml']['persistence_mode'] == 1 else 1)" && ok || bad "list reads persistence_mode 1 back"
V apply -f "$tmp/host.yaml"; expect 0 "second apply"
has out "nothing to do" "second apply changes nothing"
V assert -f "$tmp/host.yaml"; expect 0 "assert after apply"

# nvidia-persistenced installed: apply enables it (systemctl --root on a tree), assert checks it
units=$tmp/host/usr/lib/systemd/system wants=$tmp/host/etc/systemd/system/multi-user.target.wants
mkdir -p "$units"
printf '[Unit]\nDescription=NVIDIA Persistence Daemon\n[Service]\nType=forking\nExecStart=/usr/bin/nvidia-persistenced --user nvidia-persistenced\n[Install]\nWantedBy=multi-user.target\n' \
    >"$units/nvidia-persistenced.service"
V assert -f "$tmp/host.yaml"; expect 1 "assert: the daemon is installed, not enabled"
has out "+ enable     nvidia-persistenced.service" "assert names the unit"
V apply -f "$tmp/host.yaml"; expect 0 "apply enables the unit"
[[ -L $wants/nvidia-persistenced.service ]] && ok || bad "no $wants/nvidia-persistenced.service after apply"
V assert -f "$tmp/host.yaml"; expect 0 "assert: enabled"
rm "$wants/nvidia-persistenced.service"
V assert -f "$tmp/host.yaml"; expect 1 "assert: disabled behind our back"

# off, and a refused NVML call: 3b:00.0 is set first, 5e:00.0 refuses, 3b:00.0 goes back
sed -i 's/persistence: on/persistence: off/' "$tmp/host.yaml"
echo "gpu.1.persistence_locked=1" >>"$tmp/host/nvml.conf"
V apply -f "$tmp/host.yaml"; expect 1 "apply with a refused NVML call"
has err "0000:5e:00.0: NVML could not turn persistence mode off" "the error names the GPU"
has err "every earlier step was rolled back" "rolled back"
[[ $(mode 0) == 1 && $(mode 1) == 1 ]] && ok || bad "modes after the rollback: $(mode 0) $(mode 1)"
sed -i '/persistence_locked/d' "$tmp/host/nvml.conf"
V apply -f "$tmp/host.yaml"; expect 0 "apply off"
[[ $(mode 0) == 0 && $(mode 1) == 0 ]] && ok || bad "modes after off: $(mode 0) $(mode 1)"
V assert -f "$tmp/host.yaml"; expect 0 "off does not ask for the daemon"

# no NVML (the driver not loaded yet): enabling nvidia-persistenced is what keeps the mode; without
# the daemon installed apply cannot set it and says why
sed -i 's/persistence: off/persistence: on/' "$tmp/host.yaml"
N() { VGPU_ROOT="$tmp/host" env -u LD_LIBRARY_PATH "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
N assert -f "$tmp/host.yaml"; expect 1 "no NVML: assert"
[[ $(grep -c '^[-+]' "$tmp/out") == 1 ]] && has out "+ enable     nvidia-persistenced.service" "no NVML: the unit only" ||
    bad "no NVML: $(cat "$tmp/out")"
N apply -f "$tmp/host.yaml"; expect 0 "no NVML: apply enables the unit"
N assert -f "$tmp/host.yaml"; expect 0 "no NVML: assert after"
rm -r "$units" "$wants"
N apply -f "$tmp/host.yaml"; expect 1 "no NVML, no daemon: apply fails"
has err "NVML (libnvidia-ml.so.1) is not available to set persistence mode" "and says why"

# parse errors: FILE:LINE:COLUMN and the field; a non-NVIDIA GPU is refused
printf 'version: 1\ngpus:\n  - bdf: "0000:3b:00.0"\n    persistence: maybe\n' >"$tmp/bad.yaml"
V assert -f "$tmp/bad.yaml"; expect 1 "bad value"
has err "bad.yaml:4:18: field 'persistence': expected true or false, got 'maybe'" "FILE:LINE:COLUMN"
cp -a "$FIXTURES/amd-mxgpu" "$tmp/amd"
printf 'version: 1\ngpus:\n  - bdf: "0000:03:00.0"\n    persistence: on\n' >"$tmp/amd.yaml"
VGPU_ROOT="$tmp/amd" "$VGPUCTL" assert -f "$tmp/amd.yaml" >"$tmp/out" 2>"$tmp/err"; rc=$?
expect 1 "persistence on an AMD GPU"
has err "amd.yaml:3: persistence is NVIDIA's driver mode; 0000:03:00.0" "refused with the line"

summary
