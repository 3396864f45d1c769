#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Our udev rules (data/udev/90-vgpuctl.rules) in Debian's systemd-udevd, on the uevents the real
# kernel sends when an mdev parent registers (modprobe mtty) and when SR-IOV VFs appear and bind
# (the emulated NVMe PF). The rules file is loaded as a test copy in which each RUN+="CMD" becomes
# RUN+="/run/udev-record rule:LINE CMD": the recorder writes down the event and the command the
# rule would have run, and runs nothing (there is no systemd here to start the unit). The VF rule
# matches NVIDIA's driver and its vGPU type directory, which this guest cannot have: the copy maps
# exactly those two keys onto the emulated VF (its driver, and an attribute reached through a
# subdirectory of the VF, as NVIDIA's is), and says so; every other key is the real file's.
. /vm/lib.sh
UDEVD=/lib/systemd/systemd-udevd REAL=/vm/90-vgpuctl.rules LOG=/run/udev-record.log
chk "systemd-udevd and udevadm in the guest (Debian's udev, tests/vm/deps.sh)" test -x /usr/bin/udevadm -a -e $UDEVD
chk "the rules file is in the guest" test -s $REAL
[ -x /usr/bin/udevadm ] && [ -s $REAL ] || { finish; exit; }

cat >/run/udev-record <<'REC'
#!/bin/sh
tag=$1; shift
echo "$tag action=$ACTION subsystem=$SUBSYSTEM kernel=${DEVPATH##*/} driver=$DRIVER mdev_state=$MDEV_STATE run=$*" >>/run/udev-record.log
REC
chmod 755 /run/udev-record
mkdir -p /run/udev/rules.d
# every event, whatever our rules say: what the kernel sent
echo 'RUN+="/run/udev-record event"' >/run/udev/rules.d/00-record-all.rules
# the test copy of the real rules
awk '/^[[:space:]]*(#|$)/ { print; next } { gsub(/RUN\+="/, "RUN+=\"/run/udev-record rule:" NR " "); print }' $REAL |
	sed 's/DRIVER=="nvidia"/DRIVER=="nvme"/; s#ATTR{nvidia/creatable_vgpu_types}=="?\*"#ATTR{physfn/sriov_totalvfs}=="?*"#' \
		>/run/udev/rules.d/90-vgpuctl.rules
nrules=$(grep -cv '^[[:space:]]*\(#\|$\)' $REAL)
chk "each of the $nrules rules has a RUN action the copy records" \
	test "$(grep -c 'RUN+="/run/udev-record rule:' /run/udev/rules.d/90-vgpuctl.rules)" = "$nrules"
rule_line() { awk -v k="$1" '!/^[[:space:]]*#/ && index($0, k) { print NR }' /run/udev/rules.d/90-vgpuctl.rules; }
VFLINE=$(rule_line 'DRIVER=="nvme"') MDEVLINE=$(rule_line 'ENV{MDEV_STATE}')
chk "the NVIDIA VF rule (line $VFLINE) is mapped onto the emulated VF: driver and type directory" \
	sh -c "test -n '$VFLINE' && grep -q 'ATTR{physfn/sriov_totalvfs}' /run/udev/rules.d/90-vgpuctl.rules"
note "test copy:"; grep -v '^#' /run/udev/rules.d/90-vgpuctl.rules | sed 's/^/#   /'

$UDEVD --daemon --resolve-names=never 2>/run/udevd.err
i=0; while [ ! -e /run/udev/control ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
chk "systemd-udevd started ($(/usr/bin/udevadm --version))" test -e /run/udev/control
settle() { /usr/bin/udevadm settle -t 60; }
ran() { grep "^rule:$1 $2" $LOG | grep -c 'run=.*vgpuctl-restore\.service'; }

# ---- an mdev parent: unregister (rmmod), then register (modprobe) mtty
chk "no mtty mdev left by earlier scenarios" test -z "$(find /sys/class/mdev_bus/mtty/mdev_supported_types/*/devices -mindepth 1 2>/dev/null)"
# vgpuctl tells a parent registered again by the inode of its class link (lib/host/mdev.c)
link_ino=$(stat -c %i /sys/class/mdev_bus/mtty)
: >$LOG
chk "rmmod mtty" rmmod mtty
settle
note "events of rmmod mtty:"; sed 's/^/#   /' $LOG
chk "the kernel said MDEV_STATE=unregistered" grep -q '^event action=change .*kernel=mtty .*mdev_state=unregistered' $LOG
chk "no rule ran for the unregistration" test "$(grep -c '^rule:' $LOG)" = 0
: >$LOG
chk "modprobe mtty" modprobe mtty
settle
note "events of modprobe mtty:"; sed 's/^/#   /' $LOG
chk "the kernel said MDEV_STATE=registered in a change event on the parent" \
	grep -q '^event action=change subsystem=mtty kernel=mtty .*mdev_state=registered' $LOG
chk "and sent no add in subsystem mdev_bus (what the rule used to wait for)" \
	test "$(grep -c '^event action=add subsystem=mdev_bus' $LOG)" = 0
chk "rule line $MDEVLINE ran the restore once for the registration" test "$(ran "$MDEVLINE" 'action=change subsystem=mtty kernel=mtty')" = 1
chk "no other rule ran" test "$(grep -c '^rule:' $LOG)" = 1
chk "the registration is a new /sys/class/mdev_bus/mtty link (inode $link_ino before)" \
	test -n "$link_ino" -a "$(stat -c %i /sys/class/mdev_bus/mtty)" != "$link_ino"
grep "^rule:" $LOG | sed 's/^/# ran: /'

# ---- SR-IOV: two VFs appear and their driver binds
PF=
for d in /sys/bus/pci/devices/*; do [ -f $d/sriov_totalvfs ] && PF=$d && break; done
chk "found an SR-IOV PF" test -n "$PF"
if [ -n "$PF" ]; then
	echo 1 >$PF/sriov_drivers_autoprobe
	: >$LOG
	chk "enable 2 VFs" sh -c "echo 2 > $PF/sriov_numvfs"
	settle
	note "events of enabling 2 VFs:"; sed 's/^/#   /' $LOG
	for v in $PF/virtfn0 $PF/virtfn1; do
		V=$(basename "$(readlink -f $v)")
		chk "$(basename $v) ($V): the kernel sent add and bind" \
			sh -c "grep -q '^event action=add subsystem=pci kernel=$V ' $LOG && grep -q '^event action=bind subsystem=pci kernel=$V ' $LOG"
		chk "$(basename $v) ($V): rule line $VFLINE ran the restore once, on bind" \
			test "$(ran "$VFLINE" "action=bind subsystem=pci kernel=$V ")" = 1
	done
	chk "no rule ran for the PF" test "$(grep "^rule:.* kernel=$(basename $PF) " $LOG | wc -l)" = 0
	grep "^rule:" $LOG | sed 's/^/# ran: /'
	chk "disable VFs" sh -c "echo 0 > $PF/sriov_numvfs"
	settle
fi

/usr/bin/udevadm control --exit
note "udevd stderr: $(tr '\n' ' ' </run/udevd.err | cut -c1-300)"
rm -rf /run/udev /run/udev-record /run/udev-record.log
finish
