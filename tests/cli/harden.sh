#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# harden.sh — `vgpuctl harden` on writable copies of fixture hosts: loosened modes fail the
# audit, --apply fixes them (modes and owners checked after), the re-audit passes, --json's
# shape, usage errors, and the generated nftables ruleset is accepted by `nft -c` when installed.
# /dev/vfio/N are real character devices when running as root (mknod), otherwise that part
# is skipped. As root the whole script runs in a network namespace of its own (unshare -n: only
# loopback, an empty ruleset), where the real nft loads, lists and flushes rules: the firewall
# check passes with our rules loaded and fails once they are flushed; --apply loads them.
# Needs VGPUCTL and FIXTURES (set by tests/meson.build).
set -uo pipefail

if [[ $(id -u) == 0 && -z ${HARDEN_NETNS:-} ]] && command -v nft >/dev/null && unshare -n true 2>/dev/null; then
        HARDEN_NETNS=1 exec unshare -n "$BASH" "$0" "$@"
fi
netns=${HARDEN_NETNS:-0}
# after the re-exec above: an exec'd process runs no exit trap, so $tmp is made here
source "$(dirname "$0")/testlib.sh"

cp -a "$FIXTURES/nvidia-mdev" "$FIXTURES/kernel-samples" "$FIXTURES/nvidia-sriov-vfio" "$tmp/"
mdev=$tmp/nvidia-mdev
ks=$tmp/kernel-samples
sv=$tmp/nvidia-sriov-vfio

# harden ROOT [ARGS...]: stdout, stderr and rc land in $tmp.
harden() {
        local root=$1
        shift
        VGPU_ROOT="$root" "$VGPUCTL" harden "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}

expect_mode() {
        local got
        got=$(stat -c '%a %u:%g' "$1")
        [[ $got == "$2" ]] && ok || bad "$3: $1 is '$got', expected '$2'"
}

# The fixture as shipped: create/remove are 0200 root, nothing else to check; no public iface.
harden "$mdev"
expect 0 "clean nvidia-mdev"
has out "PASS  harden.mdev_create" "clean nvidia-mdev"
has out "SKIP  harden.sriov_numvfs" "clean nvidia-mdev"
has out "SKIP  harden.firewall" "clean nvidia-mdev"

# Loosen a create and a remove file: the audit fails and names them.
type_dir=$(ls -d "$mdev"/sys/class/mdev_bus/*/mdev_supported_types/* | head -n1)
create=$type_dir/create
remove=$(ls "$mdev"/sys/bus/mdev/devices/*/remove | head -n1)
chmod 0222 "$create"
chmod 0660 "$remove"
harden "$mdev"
expect 1 "loose mdev"
has out "FAIL  harden.mdev_create" "loose mdev"
has out "${create#"$mdev"}: file mode 0222 owner" "loose mdev evidence"
has out "remedy:   vgpuctl harden --apply" "loose mdev remedy"

# sriov_numvfs of a GPU (class 0x03): other-writable fails. kernel-samples' only one is an
# NVMe drive's (class 0x0108): not a GPU, not audited, even when loose.
numvfs=$(ls "$sv"/sys/bus/pci/devices/*/sriov_numvfs | head -n1)
chmod 0666 "$numvfs"
harden "$sv"
expect 1 "loose sriov_numvfs"
has out "FAIL  harden.sriov_numvfs" "loose sriov_numvfs"
has out "${numvfs#"$sv"}: file mode 0666 owner" "loose sriov_numvfs evidence"
chmod 0666 "$ks"/sys/bus/pci/devices/*/sriov_numvfs
harden "$ks"
expect 0 "kernel-samples: NVMe sriov_numvfs"
has out "SKIP  harden.sriov_numvfs" "kernel-samples: NVMe sriov_numvfs"
has out "PASS  harden.mdev_create" "kernel-samples mdev"

# /dev/vfio: as root, character devices with a wrong group and mode, plus the container node
# (ignored) and a plain file (reported as a warning, never changed).
is_root=0
[[ $(id -u) == 0 ]] && is_root=1
if ((is_root)); then
        mkdir -p "$mdev/dev/vfio"
        mknod "$mdev/dev/vfio/vfio" c 10 196 && chmod 0666 "$mdev/dev/vfio/vfio"
        mknod "$mdev/dev/vfio/12" c 240 0 && chmod 0666 "$mdev/dev/vfio/12"
        mknod "$mdev/dev/vfio/13" c 240 1 && chmod 0600 "$mdev/dev/vfio/13" && chown 0:1 "$mdev/dev/vfio/13"
        mkdir -p "$mdev/run/vgpud"
        python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$mdev/run/vgpud/vgpud.sock"
        chmod 0666 "$mdev/run/vgpud/vgpud.sock"
        # GPU device nodes: NVIDIA's as its driver makes them by default (0666), DRM's
        mkdir -p "$mdev/dev/dri" "$mdev/dev/nvidia-caps"
        mknod "$mdev/dev/nvidiactl" c 195 255 && chmod 0666 "$mdev/dev/nvidiactl" && chown 0:44 "$mdev/dev/nvidiactl"
        mknod "$mdev/dev/nvidia0" c 195 0 && chmod 0666 "$mdev/dev/nvidia0"
        mknod "$mdev/dev/dri/card0" c 226 0 && chmod 0660 "$mdev/dev/dri/card0" && chown 0:44 "$mdev/dev/dri/card0"
        mknod "$mdev/dev/dri/renderD128" c 226 128 && chmod 0666 "$mdev/dev/dri/renderD128"
        harden "$mdev" --group 107 --socket-group 4
        has out "FAIL  harden.gpu_devices" "loose GPU device nodes"
        has out "3 of 4 GPU device nodes writable by others than root" "loose GPU device nodes"
        has out "/dev/nvidia0: char device mode 0666 owner 0:0 (not allowed)" "GPU device evidence"
        has out "/dev/dri/renderD128: char device mode 0666 owner 0:0 (not allowed)" "GPU device evidence"
        grep -q "/dev/nvidia-caps:" "$tmp/out" && bad "the directory /dev/nvidia-caps is audited" || ok
        expect 1 "loose vfio"
        has out "FAIL  harden.vfio_devices" "loose vfio"
        has out "/dev/vfio/12: char device mode 0666 owner 0:0 (not allowed)" "vfio evidence"
        has out "wanted: owner 0:107 mode 0660" "vfio evidence"
        grep -q "/dev/vfio/vfio:" "$tmp/out" && bad "the container /dev/vfio/vfio is audited" || ok
        has out "FAIL  harden.daemon_socket" "loose socket"
        harden "$mdev" --group no-such-group-vgpuctl
        has out "group 'no-such-group-vgpuctl' does not exist" "unknown group"
        has out "remedy:   groupadd --system no-such-group-vgpuctl" "unknown group remedy"
else
        echo "not root: /dev/vfio and socket ownership not tested"
fi

# --apply with a public interface: fixes everything, writes the ruleset, re-audits.
harden "$mdev" --apply --group 107 --socket-group 4 --public-if eth0 --public-if wan1 --ports 443,4172,8443,3389
expect 0 "apply"
has out "Changes:" "apply"
has out "${create#"$mdev"}: mode 0222 owner 0:0 -> mode 0200 owner 0:0" "apply change list"
has out "PASS  harden.mdev_create" "after apply"
if ((netns)); then
        has out "PASS  harden.firewall" "after apply (loaded)"
        has out "management ports closed on 2 public interface(s)" "after apply"
        has out "/etc/nftables.d/vgpuctl.nft: loaded (nft -f)" "apply change list: loaded"
        has out "/etc/nftables.conf: includes /etc/nftables.d/vgpuctl.nft" "apply change list: persistent"
        nft list table inet vgpuctl >/dev/null 2>&1 && ok || bad "apply: table inet vgpuctl not in the kernel"
else
        has out "WARN  harden.firewall" "after apply"
        has out "cannot read the live ruleset; ruleset written" "after apply"
fi
expect_mode "$create" "200 0:0" "apply create"
expect_mode "$remove" "640 0:0" "apply remove"
nft_file=$mdev/etc/nftables.d/vgpuctl.nft
[[ -f $nft_file ]] && ok || bad "apply: $nft_file not written"
grep -qF 'iifname { "eth0", "wan1" } tcp dport { 443, 4172, 8443, 3389 } drop' "$nft_file" && ok || bad "ruleset content"
grep -qF 'table inet vgpuctl {' "$nft_file" && ok || bad "ruleset table"
if ((is_root)); then
        has out "PASS  harden.vfio_devices" "after apply"
        has out "PASS  harden.daemon_socket" "after apply"
        expect_mode "$mdev/dev/vfio/12" "660 0:107" "apply vfio/12"
        expect_mode "$mdev/dev/vfio/13" "660 0:107" "apply vfio/13"
        expect_mode "$mdev/dev/vfio/vfio" "666 0:0" "container untouched"
        expect_mode "$mdev/run/vgpud/vgpud.sock" "660 0:4" "apply socket"
        has out "PASS  harden.gpu_devices" "after apply"
        expect_mode "$mdev/dev/nvidiactl" "660 0:44" "apply nvidiactl"
        expect_mode "$mdev/dev/nvidia0" "660 0:0" "apply nvidia0"
        expect_mode "$mdev/dev/dri/renderD128" "660 0:0" "apply renderD128"
        expect_mode "$mdev/dev/dri/card0" "660 0:44" "card0 untouched"
        # kept across reboots and hotplug: a udev rule for VFIO and DRM, module options for NVIDIA
        rules=$mdev/etc/udev/rules.d/70-vgpuctl-harden.rules
        grep -qxF 'SUBSYSTEM=="vfio", KERNEL!="vfio", OWNER="root", GROUP="107", MODE="0660"' "$rules" && ok || bad "udev rule: vfio line"
        grep -qxF 'SUBSYSTEM=="drm", KERNEL=="card[0-9]*|renderD[0-9]*", OWNER="root", MODE="0660"' "$rules" && ok || bad "udev rule: drm line"
        grep -qxF 'options nvidia NVreg_DeviceFileUID=0 NVreg_DeviceFileGID=44 NVreg_DeviceFileMode=0660' \
                "$mdev/etc/modprobe.d/vgpuctl-harden.conf" && ok || bad "NVIDIA module options"
        has out "/etc/udev/rules.d/70-vgpuctl-harden.rules: udev rule written" "apply change list: udev rule"
        # udev itself reads the rule without complaint (systemd 252 has no udevadm verify)
        if command -v udevadm >/dev/null && udevadm verify --help >/dev/null 2>&1; then
                udevadm verify "$rules" >"$tmp/verify" 2>&1 && ok || bad "udevadm verify: $(cat "$tmp/verify")"
        fi
        # A plain file in /dev/vfio: a warning, left alone by --apply.
        touch "$mdev/dev/vfio/14" && chown 0:107 "$mdev/dev/vfio/14" && chmod 0660 "$mdev/dev/vfio/14"
        harden "$mdev" --apply --group 107 --socket-group 4
        expect 0 "plain file in /dev/vfio"
        has out "WARN  harden.vfio_devices" "plain file in /dev/vfio"
        has out "/dev/vfio/14: file mode 0660 owner 0:107 (not a character device: left alone)" "plain file evidence"
        rm -f "$mdev/dev/vfio/14"
fi

# The written ruleset passes nft's own check (no kernel change: -c).
if command -v nft >/dev/null; then
        nft -c -f "$nft_file" 2>"$tmp/nft.err" && ok || bad "nft -c rejects the ruleset: $(cat "$tmp/nft.err")"
else
        echo "nft not installed: ruleset not checked with nft -c"
fi

if command -v nft >/dev/null; then
        harden "$mdev" --json --group 107 --socket-group 4 --public-if eth0 --public-if wan1 --ports 443,4172,8443,3389
        has out "nft -c -f: ruleset accepted" "nft check in evidence"
fi
if ((netns)); then
        fw_args=(--group 107 --socket-group 4 --public-if eth0 --public-if wan1 --ports 443,4172,8443,3389)
        grep -qxF 'include "/etc/nftables.d/vgpuctl.nft"' "$mdev/etc/nftables.conf" && ok || bad "nftables.conf lacks the include"
        # a second --apply does not include it twice
        harden "$mdev" --apply "${fw_args[@]}"
        [[ $(grep -c 'include "/etc/nftables.d/vgpuctl.nft"' "$mdev/etc/nftables.conf") == 1 ]] && ok || bad "include added twice"
        # flushed: the ports are open again, and the check says so
        nft flush table inet vgpuctl
        harden "$mdev" "${fw_args[@]}"
        expect 1 "flushed ruleset"
        has out "FAIL  harden.firewall" "flushed ruleset"
        has out "live ruleset: eth0 tcp port 443 is open" "flushed ruleset evidence"
        has out "0 of 16 interface/protocol/port combinations dropped" "flushed ruleset count"
        # loaded by hand from the file: passes again
        nft -f "$mdev/etc/nftables.d/vgpuctl.nft"
        harden "$mdev" "${fw_args[@]}"
        expect 0 "reloaded by hand"
        has out "PASS  harden.firewall" "reloaded by hand"
        # other people's rules count for what they drop: one port missing is a failure
        nft delete table inet vgpuctl
        nft -f - <<'NFT'
table ip own {
        chain in { type filter hook input priority 0; policy accept;
                iifname { "eth0", "wan1" } tcp dport { 443, 4172, 8443, 3389 } drop
                iifname { "eth0", "wan1" } udp dport { 443, 4172, 8443 } counter drop
        }
}
NFT
        harden "$mdev" "${fw_args[@]}"
        has out "FAIL  harden.firewall" "hand-written ruleset without udp 3389"
        has out "live ruleset: eth0 udp port 3389 is open" "hand-written ruleset evidence"
        nft add rule ip own in iifname '{ "eth0", "wan1" }' udp dport 3389 drop
        harden "$mdev" "${fw_args[@]}"
        has out "PASS  harden.firewall" "hand-written ruleset complete"
        # loaded but not written where the boot loads it from: a warning
        mv "$mdev/etc/nftables.d/vgpuctl.nft" "$tmp/saved.nft"
        harden "$mdev" "${fw_args[@]}"
        has out "WARN  harden.firewall" "loaded, not persistent"
        has out "management ports closed, but not persistent" "loaded, not persistent"
        mv "$tmp/saved.nft" "$mdev/etc/nftables.d/vgpuctl.nft"
        nft flush ruleset
fi

# Re-audit after apply (no --apply): no failure remains.
harden "$mdev" --group 107 --socket-group 4
expect 0 "re-audit"
grep -q "^FAIL" "$tmp/out" && bad "re-audit: a failure remains: $(grep '^FAIL' "$tmp/out")" || ok

# nvidia-sriov-vfio: --apply fixes sriov_numvfs (0666 -> 0644).
harden "$sv" --apply
expect 0 "apply nvidia-sriov-vfio"
expect_mode "$numvfs" "644 0:0" "apply sriov_numvfs"
has out "PASS  harden.sriov_numvfs" "apply nvidia-sriov-vfio"

# --json: {applied, applied_changes, results[]} with doctor's result keys.
chmod 0666 "$numvfs"
harden "$sv" --json --public-if eth0
expect 1 "json"
python3 - "$tmp/out" <<'PY' && ok || bad "json shape"
import json, os, sys
doc = json.load(open(sys.argv[1]))
assert set(doc) == {"applied", "applied_changes", "results"}, sorted(doc)
assert doc["applied"] is False and doc["applied_changes"] is None
ids = [r["id"] for r in doc["results"]]
assert ids == ["harden.mdev_create", "harden.sriov_numvfs", "harden.vfio_devices", "harden.daemon_socket",
               "harden.firewall", "harden.gpu_devices"], ids
keys = {"id", "status", "subject", "summary", "evidence", "remedy"}
st = {}
for r in doc["results"]:
    assert set(r) == keys, sorted(r)
    assert (r["remedy"] is not None) == (r["status"] in ("warn", "fail")), r
    st[r["id"]] = r["status"]
assert st["harden.sriov_numvfs"] == "fail", st
assert st["harden.firewall"] == ("fail" if os.environ.get("HARDEN_NETNS") else "warn"), st
fw = [r for r in doc["results"] if r["id"] == "harden.firewall"][0]
assert 'iifname { "eth0" } udp dport { 443, 4172, 8443 } drop' in fw["remedy"], fw["remedy"]
PY
python3 "$(dirname "$0")/validate.py" "$(dirname "$0")/../../doc/schema/harden.schema.json" "$tmp/out" && ok || bad "harden --json does not match harden.schema.json"
harden "$sv" --json --apply
expect 0 "json apply"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["applied"] is True and any("sriov_numvfs" in c for c in d["applied_changes"]), d' \
        "$tmp/out" && ok || bad "json apply shape"
python3 "$(dirname "$0")/validate.py" "$(dirname "$0")/../../doc/schema/harden.schema.json" "$tmp/out" && ok || bad "harden --apply --json does not match harden.schema.json"

# No --public-if: the interfaces with a default route are proposed (IPv4 and IPv6; not lo's
# reject route, not a route to one subnet), checked, and only warned about; --apply leaves the
# firewall alone until they are named.
mkdir -p "$ks/proc/net"
printf 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n%s\n%s\n' \
        'wan0	00000000	010200C0	0003	0	0	0	00000000	0	0	0' \
        'lan1	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0' >"$ks/proc/net/route"
z=00000000000000000000000000000000
printf '%s\n' "$z 00 $z 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     wan6" \
        "fd000000000000000000000000000000 40 $z 00 $z 00000100 00000001 00000000 00000001     lan1" \
        "$z 00 $z 00 $z ffffffff 00000001 00000000 00200200       lo" >"$ks/proc/net/ipv6_route"
harden "$ks"
has out "WARN  harden.firewall" "proposed interfaces"
has out "public interfaces proposed from the default route: wan0, wan6 (--public-if names them)" "proposed interfaces"
has out "vgpuctl harden --apply --public-if wan0 --public-if wan6" "proposed interfaces remedy"
grep -q "^FAIL  harden.firewall" "$tmp/out" && bad "a proposed interface made the audit fail" || ok
if ((netns)); then
        harden "$ks" --apply
        nft list table inet vgpuctl >/dev/null 2>&1 && bad "--apply loaded rules for interfaces nobody named" || ok
fi
rm -r "$ks/proc/net"

# Usage errors: exit 2.
for bad in "--ports 0" "--ports 70000" "--ports 443," "--ports x" "--public-if bad/name" "--public-if waytoolonginterfacename" "extra"; do
        # shellcheck disable=SC2086
        harden "$ks" $bad
        expect 2 "usage: $bad"
done

summary
