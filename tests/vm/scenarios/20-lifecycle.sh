#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpuctl create/remove/define/undefine/start/stop/vfs on the real kernel: every sample type,
# idempotent repeats, conflicts and over-capacity refused with nothing changed, a failing
# attribute rolled back, names that are paths refused, mdevctl reading our definitions, SR-IOV VFs
# 0 -> 2 -> 3 -> 0.
. /vm/lib.sh
need_vgpuctl
BUS=/sys/class/mdev_bus

avail() { cat $BUS/$1/mdev_supported_types/$2/available_instances; }
# snapshot of every type's count, to prove "nothing changed"
counts() { for t in $BUS/*/mdev_supported_types/*; do echo "$t $(cat $t/available_instances)"; done; }

note "---- create/remove on every sample type"
for t in $BUS/*/mdev_supported_types/*; do
	p=${t%/mdev_supported_types/*} && p=${p##*/} && id=${t##*/}
	u=$(new_uuid)
	before=$(counts)
	a0=$(avail $p $id)
	vgpuctl create --parent $p --type $id --uuid $u >/tmp/out 2>&1
	chk "create $id on $p: exit 0" test $? -eq 0
	chk "create $id: /sys/bus/mdev/devices/$u exists" test -e /sys/bus/mdev/devices/$u
	chk "create $id: mdev_type link is $id" test "$(link_name /sys/bus/mdev/devices/$u/mdev_type)" = "$id"
	a1=$(avail $p $id)
	chk "create $id: available_instances $a0 -> $a1 (one fewer)" test "$a1" -lt "$a0"
	vgpuctl types $p --json | json_items | grep "\"type\":\"$id\"" | jfield available_instances >/tmp/v
	chk "create $id: vgpuctl types shows the kernel's $a1" test "$(cat /tmp/v)" = "$a1"
	vgpuctl list --json | json_items instances | grep -q "\"uuid\":\"$u\".*\"parent\":\"$p\".*\"type\":\"$id\""
	chk "create $id: vgpuctl list shows it" test $? -eq 0
	mid=$(counts)
	vgpuctl create --parent $p --type $id --uuid $u >/tmp/out 2>&1
	chk "create $id again: exit 0 (idempotent)" test $? -eq 0
	chk "create $id again: says so" grep -q "already exists" /tmp/out
	chk "create $id again: nothing changed" test "$(counts)" = "$mid"
	vgpuctl remove $u >/tmp/out 2>&1
	chk "remove $id: exit 0" test $? -eq 0
	chk "remove $id: device gone" test ! -e /sys/bus/mdev/devices/$u
	chk "remove $id: every count restored" test "$(counts)" = "$before"
	vgpuctl remove $u >/tmp/out 2>&1
	chk "remove $id again: exit 1, it is not there" test $? -eq 1
done

note "---- conflicts and capacity are refused before any change"
u=$(new_uuid)
vgpuctl create --parent mbochs --type mbochs-small --uuid $u >/dev/null 2>&1
before=$(counts)
vgpuctl create --parent mbochs --type mbochs-medium --uuid $u >/tmp/out 2>&1
chk "same UUID, other type: exit 1" test $? -eq 1
chk "same UUID, other type: says what exists" grep -q "already exists as mbochs-small on mbochs" /tmp/out
chk "same UUID, other type: nothing changed" test "$(counts)" = "$before"
vgpuctl remove $u >/dev/null 2>&1
L=$(avail mbochs mbochs-large); made=""
for i in $(seq 1 "$L"); do u=$(new_uuid); vgpuctl create --parent mbochs --type mbochs-large --uuid $u >/dev/null 2>&1 && made="$made $u"; done
chk "mbochs-large: all $L instances created" test "$(avail mbochs mbochs-large)" -eq 0
before=$(counts)
vgpuctl create --parent mbochs --type mbochs-large >/tmp/out 2>&1
chk "mbochs-large over capacity: exit 1" test $? -eq 1
chk "over capacity: the message counts and names them" grep -q "no available instances of mbochs-large on mbochs: 0 left; instances present: " /tmp/out
note "$(cat /tmp/out)"
chk "over capacity: nothing changed" test "$(counts)" = "$before"
for u in $made; do vgpuctl remove $u >/dev/null 2>&1; done
vgpuctl create --parent mbochs --type mbochs-nope >/tmp/out 2>&1
chk "unknown type: exit 1 listing the real ones" grep -q "it offers: mbochs-large, mbochs-medium, mbochs-small" /tmp/out
vgpuctl create --parent mbochs --type mbochs-small --uuid not-a-uuid >/tmp/out 2>&1
chk "malformed UUID: refused as bad usage (exit 2)" test $? -eq 2

note "---- a failing attribute write rolls the creation back"
before=$(counts)
u=$(new_uuid)
vgpuctl create --parent mdpy --type mdpy-vga --uuid $u --attr no_such_attribute=1 >/tmp/out 2>&1
chk "bad --attr: exit 1" test $? -eq 1
chk "bad --attr: says it removed the device again" grep -q "removed again" /tmp/out
chk "bad --attr: no device left" test ! -e /sys/bus/mdev/devices/$u
chk "bad --attr: every count restored" test "$(counts)" = "$before"

note "---- names that would lead a write out of the device's directory are refused"
before=$(counts)
cp=$(cat /proc/sys/kernel/core_pattern)
u=$(new_uuid)
vgpuctl create --parent mdpy --type mdpy-vga --uuid $u --attr ../../../../proc/sys/kernel/core_pattern=/tmp/x >/tmp/out 2>&1
chk "--attr ../../../../proc/...: exit 1" test $? -eq 1
chk "--attr ../: says why" grep -q "not a path below the device" /tmp/out
chk "--attr ../: core_pattern untouched" test "$(cat /proc/sys/kernel/core_pattern)" = "$cp"
chk "--attr ../: no device created" test ! -e /sys/bus/mdev/devices/$u
vgpuctl define --parent ../../../tmp --type mtty-2 --uuid $u >/tmp/out 2>&1
chk "define --parent ../../../tmp: exit 1" test $? -eq 1
chk "define --parent ../: nothing written outside the store" test ! -e /tmp/$u
chk "names refused: every count unchanged" test "$(counts)" = "$before"

note "---- attributes through the device's sysfs links (mdev_type -> the type) are refused"
before=$(counts)
u=$(new_uuid); u2=$(new_uuid)
vgpuctl create --parent mbochs --type mbochs-small --uuid $u --attr mdev_type/create=$u2 >/tmp/out 2>&1
chk "--attr mdev_type/create: exit 1" test $? -eq 1
chk "--attr mdev_type/create: says why" grep -q "not a file in the device's own directory" /tmp/out
chk "--attr mdev_type/create: no second device" test ! -e /sys/bus/mdev/devices/$u2
chk "--attr mdev_type/create: nor the first" test ! -e /sys/bus/mdev/devices/$u
victim=$(new_uuid)
vgpuctl create --parent mbochs --type mbochs-small --uuid $victim >/dev/null 2>&1
chk "a victim device" test -e /sys/bus/mdev/devices/$victim
u=$(new_uuid)
vgpuctl create --parent mbochs --type mbochs-small --uuid $u --persist --attr mdev_type/devices/$victim/remove=1 >/tmp/out 2>&1
chk "--attr mdev_type/devices/OTHER/remove: exit 1" test $? -eq 1
chk "--attr .../OTHER/remove: the other device is still there" test -e /sys/bus/mdev/devices/$victim
chk "--attr .../OTHER/remove: not stored" test ! -e /etc/mdevctl.d/mbochs/$u
vgpuctl remove $victim >/dev/null 2>&1
chk "links refused: every count as before" test "$(counts)" = "$before"

note "---- define/start/stop/undefine, and mdevctl reads our store"
u=$(new_uuid)
vgpuctl define --parent mtty --type mtty-2 --uuid $u >/tmp/out 2>&1
chk "define: exit 0" test $? -eq 0
chk "define: file in mdevctl's store" test -f /etc/mdevctl.d/mtty/$u
chk "define: no device yet" test ! -e /sys/bus/mdev/devices/$u
vgpuctl define --parent mtty --type mtty-2 --uuid $u >/tmp/out 2>&1
chk "define again: exit 0, already defined" grep -q "already defined" /tmp/out
vgpuctl define --parent mtty --type mtty-1 --uuid $u >/tmp/out 2>&1
chk "define differently: exit 1 saying what differs" grep -q "type mtty-1, not mtty-2" /tmp/out
if command -v mdevctl >/dev/null; then
	mdevctl list -d >/tmp/md 2>&1
	note "mdevctl list -d: $(tr '\n' ' ' </tmp/md)"
	chk "mdevctl list -d shows our definition" grep -q "$u mtty mtty-2 manual" /tmp/md
else
	note "no mdevctl in the guest: cross-check skipped"
fi
vgpuctl start $u >/tmp/out 2>&1
chk "start: device exists" test -e /sys/bus/mdev/devices/$u
vgpuctl start $u >/tmp/out 2>&1
chk "start again: exit 0, already running" grep -q "already running" /tmp/out
vgpuctl stop $u >/tmp/out 2>&1
chk "stop: device gone" test ! -e /sys/bus/mdev/devices/$u
vgpuctl stop $u >/tmp/out 2>&1
chk "stop again: exit 0, not running" test $? -eq 0
vgpuctl undefine $u >/tmp/out 2>&1
chk "undefine: file gone" test ! -e /etc/mdevctl.d/mtty/$u
vgpuctl undefine $u >/tmp/out 2>&1
chk "undefine again: exit 1" test $? -eq 1
u=$(new_uuid)
vgpuctl create --parent mbochs --type mbochs-medium --uuid $u --persist --auto >/tmp/out 2>&1
chk "create --persist --auto: device and definition" test -e /sys/bus/mdev/devices/$u -a -f /etc/mdevctl.d/mbochs/$u
chk "create --persist --auto: start=auto in the store" grep -q '"start": "auto"' /etc/mdevctl.d/mbochs/$u
command -v mdevctl >/dev/null && { mdevctl list >/tmp/md 2>&1; chk "mdevctl list sees it running" grep -q "$u mbochs mbochs-medium" /tmp/md; }
vgpuctl list -d --json | json_items definitions | grep -q "\"uuid\":\"$u\".*\"running\":true"
chk "vgpuctl list -d: defined and running" test $? -eq 0
vgpuctl stop $u >/dev/null 2>&1 && vgpuctl undefine $u >/dev/null 2>&1
chk "cleanup of the persistent one" test ! -e /sys/bus/mdev/devices/$u -a ! -e /etc/mdevctl.d/mbochs/$u
# mdevctl's idiom `define -u UUID` of a running device: parent and type come from the device
u=$(new_uuid)
vgpuctl create --parent mdpy --type mdpy-hd --uuid $u >/tmp/out 2>&1
chk "create (not persistent) for define -u" test -e /sys/bus/mdev/devices/$u -a ! -e /etc/mdevctl.d/mdpy/$u
vgpuctl define --uuid $u >/tmp/out 2>&1
chk "define --uuid of a running device: exit 0" test $? -eq 0
chk "define --uuid: its type in mdevctl's store" grep -q '"mdev_type": "mdpy-hd"' /etc/mdevctl.d/mdpy/$u
command -v mdevctl >/dev/null && { mdevctl list -d >/tmp/md 2>&1; chk "mdevctl list -d sees define -u's definition" grep -q "$u mdpy mdpy-hd manual" /tmp/md; }
vgpuctl define --uuid $u --type mdpy-vga >/tmp/out 2>&1
chk "define --uuid with another type: exit 1, naming the device's" grep -q "runs as type mdpy-hd, not mdpy-vga" /tmp/out
vgpuctl stop $u >/dev/null 2>&1 && vgpuctl undefine $u >/dev/null 2>&1
chk "cleanup of the define -u one" test ! -e /sys/bus/mdev/devices/$u -a ! -e /etc/mdevctl.d/mdpy/$u

note "---- SR-IOV: vgpuctl vfs"
PF=; for d in /sys/bus/pci/devices/*; do [ -f $d/sriov_totalvfs ] && PF=${d##*/} && break; done
if [ -n "$PF" ]; then
	D=/sys/bus/pci/devices/$PF
	vgpuctl vfs $PF 2 >/tmp/out 2>&1
	chk "vfs $PF 2: exit 0" test $? -eq 0
	chk "vfs 2: sriov_numvfs 2" test "$(cat $D/sriov_numvfs)" = 2
	chk "vfs 2: autoprobe turned off first" test "$(cat $D/sriov_drivers_autoprobe)" = 0
	vgpuctl vfs $PF 2 >/tmp/out 2>&1
	chk "vfs 2 again: nothing to do" grep -q "nothing to do" /tmp/out
	vgpuctl vfs $PF 3 >/tmp/out 2>&1
	chk "vfs 2 -> 3 (the kernel needs 0 between): 3" test "$(cat $D/sriov_numvfs)" = 3
	vgpuctl vfs $PF 99 >/tmp/out 2>&1
	chk "vfs 99: refused, exit 1" test $? -eq 1
	chk "vfs 99: count unchanged" test "$(cat $D/sriov_numvfs)" = 3
	vgpuctl vfs $PF 0 >/tmp/out 2>&1
	chk "vfs 0: disabled" test "$(cat $D/sriov_numvfs)" = 0 -a ! -e $D/virtfn0
	vgpuctl vfs $PF 2 --vfio >/tmp/out 2>&1
	chk "vfs 2 --vfio: exit 0" test $? -eq 0
	chk "vfs --vfio: VF0 bound to vfio-pci" test "$(link_name $D/virtfn0/driver)" = vfio-pci
	chk "vfs --vfio: VF1 bound to vfio-pci" test "$(link_name $D/virtfn1/driver)" = vfio-pci
	vgpuctl list --json | json_items gpus >/dev/null
	vgpuctl vfs $PF 0 >/dev/null 2>&1
	chk "vfs 0 again: disabled" test "$(cat $D/sriov_numvfs)" = 0
else
	nok "no SR-IOV PF in the guest"
fi
finish
