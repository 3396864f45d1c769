#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Boots the real-kernel test guest once, runs the VM scenarios in it and prints TAP plus a summary.
#
# Usage: run.sh [--keep] [--shell] [SCENARIO...]   (SCENARIO: 00, 10-inventory, ...; default all)
#   --keep   keep the initramfs, console log and results in WORKDIR/run even when all passed
#   --shell  serial console on this terminal; a root shell after the scenarios (exit powers off)
# Env: VGPUCTL (binary, default build/src/vgpuctl/vgpuctl), VM_WORKDIR (default build/vm-lab),
#      VM_TIMEOUT (whole guest, s, default 240), VM_SCENARIO_TIMEOUT (each, s, default 120).
set -euo pipefail
# a failing command under set -e says where, instead of ending the script without a word
trap 'echo "run.sh: line $LINENO: exit status $?" >&2' ERR

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
W=${VM_WORKDIR:-$TOP/build/vm-lab}
BIN=${VGPUCTL:-$TOP/build/src/vgpuctl/vgpuctl}
keep=0 shell=0 picks=()
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	--shell) shell=1 ;;
	-h | --help) sed -n '5,9s/^# \{0,1\}//p' "$0" && exit 0 ;;
	-*) echo "run.sh: unknown option $a" >&2 && exit 2 ;;
	*) picks+=("$a") ;;
	esac
done

if ! { "$HERE/deps.sh" && "$HERE/prepare.sh" "$W"; } 2>&1 | sed 's/^/# /'; then
	printf 'not ok 1 - prepare the guest\nvm: 0 passed, 1 failed\n' && exit 1
fi

# scenarios to run, in name order (VM_SCENARIO_DIR: another directory of them, e.g. bench/vm)
SCEN_DIR=${VM_SCENARIO_DIR:-$HERE/scenarios}
scen=()
for f in "$SCEN_DIR"/[0-9]*.sh; do
	n=$(basename "$f" .sh)
	[ ${#picks[@]} -eq 0 ] && scen+=("$n") && continue
	for p in "${picks[@]}"; do
		case $n in "$(basename "$p" .sh)"*) scen+=("$n") && break ;; esac
	done
done
[ ${#scen[@]} -gt 0 ] || { echo "run.sh: no scenario matches ${picks[*]}" >&2 && exit 2; }

# our layer of the initramfs: init, lib, scenarios, and vgpuctl with every library ldd names
R=$W/run
rm -rf "$R" && mkdir -p "$R/stage/vm/scenarios" "$R/stage/usr/bin" "$R/results"
S=$R/stage
install -m 755 "$HERE/guest/init" "$S/init"
cp "$HERE/guest/lib.sh" "$S/vm/"
for n in "${scen[@]}"; do cp "$SCEN_DIR/$n.sh" "$S/vm/scenarios/"; done
# A binary and every library it needs. System files keep their paths; anything else (our build
# tree, wherever the checkout is: under /tmp the guest's tmpfs would hide it) goes below
# /opt/host with its whole path, so an $ORIGIN-relative RUNPATH into the build tree still resolves.
guest_path() { case $1 in /usr/* | /lib/* | /lib64/* | /bin/* | /sbin/*) echo "$1" ;; *) echo "/opt/host$1" ;; esac; }
copy_bin() {
	for f in "$1" $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
		f=$(realpath -ms "$f") && g=$(guest_path "$f") && mkdir -p "$S${g%/*}" && cp -L "$f" "$S$g"
	done
}
# Debian's mdevctl, to show that it sees the definitions vgpuctl writes
if command -v mdevctl >/dev/null; then
	copy_bin "$(readlink -f "$(command -v mdevctl)")"
	mkdir -p "$S/etc/mdevctl.d/scripts.d/callouts" "$S/etc/mdevctl.d/scripts.d/notifiers"
fi
if [ -x "$BIN" ]; then
	copy_bin "$BIN"
	ln -s "$(guest_path "$(realpath -ms "$BIN")")" "$S/usr/bin/vgpuctl"
	[ -f /usr/share/misc/pci.ids ] && mkdir -p "$S/usr/share/misc" && cp /usr/share/misc/pci.ids "$S/usr/share/misc/"
else
	echo "# no vgpuctl binary at $BIN: scenarios that need it will be skipped"
fi
# udevadm, which is also systemd-udevd when called by that name (the guest's 50-udev runs it
# with a copy of our rules file; the rules themselves are not installed there)
if command -v udevadm >/dev/null; then
	u=$(readlink -f "$(command -v udevadm)")
	copy_bin "$u"
	mkdir -p "$S/lib/systemd" && ln -sf "$(guest_path "$u")" "$S/lib/systemd/systemd-udevd"
fi
cp "$TOP/data/udev/90-vgpuctl.rules" "$S/vm/"
# vgpud, next to vgpuctl in the build tree (VGPUD: another one), for the daemon scenario
VGPUD_BIN=${VGPUD:-$(dirname "$BIN")/../vgpud/vgpud}
if [ -x "$VGPUD_BIN" ]; then
	copy_bin "$VGPUD_BIN"
	ln -s "$(guest_path "$(realpath -ms "$VGPUD_BIN")")" "$S/usr/bin/vgpud"
fi
# what libvgpu loads with dlopen on first use, which ldd cannot see: FreeIPMI when a BMC is there
# (lib/telemetry/ipmi.c), libsystemd and libkmod for the doctor, libsensors for vgpud's hwmon
# collector, libpci (names, config space), libyaml (host.yaml) and zlib (report) for every
# command that needs them (lib/basic/dlopen-util.h). awk reads to the end: an early exit would kill ldconfig
# with SIGPIPE once its output passes the pipe's 64 KiB, and pipefail + set -e would end this
# script without a word.
for so in libipmimonitoring.so.6 libsystemd.so.0 libkmod.so.2 libsensors.so.5 libpci.so.3 libyaml-0.so.2 libz.so.1; do
	dl_lib=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64/ && !f {print $NF; f = 1}')
	if [ -n "$dl_lib" ]; then copy_bin "$dl_lib"; fi
done
# Debian's snmpd (AgentX master) and snmptrapd for 45-ipmi: vgpud's BMC notifications end there
for b in snmpd snmptrapd; do
	[ -x /usr/sbin/$b ] && copy_bin /usr/sbin/$b
done
# ipmi-check (tests/vm/ipmi-check.c) for 45-ipmi, from the build tree next to vgpuctl's
IPMI_CHECK=${VM_IPMI_CHECK:-$(dirname "$BIN")/../../tests/vm-ipmi-check}
[ -x "$IPMI_CHECK" ] && copy_bin "$IPMI_CHECK" && ln -s "$(guest_path "$(realpath -ms "$IPMI_CHECK")")" "$S/usr/bin/ipmi-check"
# the kernel unpacks concatenated archives: the cached base layer, then ours
{ cat "$W/base.cpio.gz" && cd "$S" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1; } >"$R/initramfs.img"

# the guest: q35 + intel-iommu (one IOMMU group per device), an SR-IOV NVMe PF on a root port,
# a display controller for `vgpuctl list`, an emulated BMC on KCS (45-ipmi), and the results
# directory shared over 9p. no_timer_check: the kernel's boot check of the timer through the
# IO-APIC counts ticks in a delay loop; under TCG on a busy host the vCPU can miss them, and with
# interrupt remapping on the kernel then panics ("timer doesn't work through Interrupt-remapped
# IO-APIC", seen once in make check here) instead of booting
# shellcheck disable=SC2054 # commas are qemu's
qemu=(qemu-system-x86_64 -accel tcg,thread=multi,tb-size=256 -machine q35,kernel-irqchip=split
	-cpu max -smp "$(nproc)" -m 1024 -nographic -no-reboot -nodefaults -serial stdio -monitor none
	-device intel-iommu,intremap=on,caching-mode=on
	-device bochs-display
	-device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-kcs,bmc=bmc0
	-device pcie-root-port,id=rp1,chassis=1,slot=1
	-device nvme-subsys,id=nvmesubsys0,nqn=vgpuctl-lab
	-device nvme,bus=rp1,serial=sriovpf0,subsys=nvmesubsys0,sriov_max_vfs=4,sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=10,msix_qsize=5
	-virtfs "local,path=$R/results,mount_tag=results,security_model=none,id=results"
	-kernel "$W/kernel" -initrd "$R/initramfs.img"
	-append "console=ttyS0 panic=-1 quiet no_timer_check intel_iommu=on iommu=pt vm.timeout=${VM_SCENARIO_TIMEOUT:-120} vm.shell=$shell")
start=$(date +%s)
if [ $shell = 1 ]; then
	"${qemu[@]}" | tee "$R/console.log" || true
else
	timeout -k 5 "${VM_TIMEOUT:-240}" "${qemu[@]}" </dev/null >"$R/console.log" 2>&1 || true
fi
secs=$(($(date +%s) - start))

# collect: renumber each scenario's ok / not ok lines; a bad exit status or no result is a failure
n=0 pass=0 fail=0 skip=0
for s in "${scen[@]}"; do
	out=$R/results/$s.out rc=$(cat "$R/results/$s.rc" 2>/dev/null || echo none)
	echo "# --- $s"
	if [ "$rc" = 77 ]; then
		grep '^#' "$out" || true
		n=$((n + 1)) skip=$((skip + 1))
		echo "ok $n - $s # SKIP $(sed -n 's/^# SKIP //p; T; q' "$out")"
		continue
	fi
	f0=$fail
	while IFS= read -r line; do
		case $line in
		"ok - "*) n=$((n + 1)) pass=$((pass + 1)) && echo "ok $n - $s: ${line#ok - }" ;;
		"not ok - "*) n=$((n + 1)) fail=$((fail + 1)) && echo "not ok $n - $s: ${line#not ok - }" ;;
		*) echo "# ${line#\# }" ;;
		esac
	done < <(cat "$out" 2>/dev/null)
	case $rc in
	0) ;;
	none) n=$((n + 1)) fail=$((fail + 1)) && echo "not ok $n - $s: did not finish" ;;
	143) n=$((n + 1)) fail=$((fail + 1)) && echo "not ok $n - $s: timed out in the guest" ;;
	*) [ $fail -gt "$f0" ] || { n=$((n + 1)) fail=$((fail + 1)) && echo "not ok $n - $s: exit status $rc"; } ;;
	esac
done
done=1
[ -f "$R/results/done" ] || { done=0 && n=$((n + 1)) fail=$((fail + 1)) && echo "not ok $n - guest finished (hard timeout or crash after ${secs}s)"; }
echo "1..$n"
if [ $fail -gt 0 ] && [ $shell = 0 ]; then
	echo "# --- tail of $R/console.log"
	tail -n 40 "$R/console.log" | sed 's/\x1b\[\{0,1\}[0-9;?]*[a-zA-Z]//g; s/\r$//; s/^/# /'
fi
[ $fail -gt 0 ] || [ $keep = 1 ] || rm -rf "$S" "$R/initramfs.img"
echo "# guest ran ${secs}s; work dir $R"
[ $skip = 0 ] || echo "# $skip skipped"
echo "vm: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $done = 1 ]
