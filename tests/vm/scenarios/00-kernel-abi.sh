#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks the real kernel mdev and SR-IOV sysfs ABI vgpuctl relies on, and prints what it sees.
. /vm/lib.sh
note "kernel $(uname -r)"

# ---- mdev parents and types, as they are
chk "mdev_bus class exists" test -d /sys/class/mdev_bus
for p in mtty mdpy mbochs; do
	chk "mdev parent $p registered" test -d /sys/class/mdev_bus/$p/mdev_supported_types
done
for p in /sys/class/mdev_bus/*; do
	note "parent $(basename $p) -> $(readlink -f $p)"
	for t in $p/mdev_supported_types/*; do
		note "  type $(basename $t): name='$(rd $t/name)' description='$(rd $t/description)'" \
			"device_api=$(rd $t/device_api) available_instances=$(rd $t/available_instances)"
		note "    files: $(ls $t | tr '\n' ' ')"
		chk "$(basename $t) device_api is vfio-pci" test "$(rd $t/device_api)" = vfio-pci
	done
done

# ---- create / remove through sysfs (mtty-2 takes two ports of mtty's shared pool)
T=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
T1=${T%-2}-1
U=$(new_uuid)
b2=$(rd $T/available_instances) b1=$(rd $T1/available_instances)
chk "create mdev $U via mtty-2/create" sh -c "echo $U > $T/create"
D=/sys/bus/mdev/devices/$U
chk "$D exists" test -d $D
chk "type dir lists it under devices/" test -e $T/devices/$U
chk "mdev_type link names mtty-2" test "$(link_name $D/mdev_type)" = mtty-2
note "mdev device files: $(ls $D | tr '\n' ' ')"
note "mdev device path: $(readlink -f $D)"
a2=$(rd $T/available_instances) a1=$(rd $T1/available_instances)
chk "mtty-2 available_instances $b2 -> $a2" test "$a2" -eq $((b2 - 1))
chk "mtty-1 available_instances $b1 -> $a1 (shared port pool)" test "$a1" -eq $((b1 - 2))
g=$(link_name $D/iommu_group)
note "mdev iommu_group=$g ($(ls /sys/kernel/iommu_groups | wc -l) groups in all)"
chk "vfio group chardev /dev/vfio/$g" test -c /dev/vfio/$g
chk "mdev bound to a driver ($(link_name $D/driver))" test -e $D/driver
chk "duplicate UUID refused" sh -c "! echo $U > $T/create 2>/dev/null"
chk "malformed UUID refused" sh -c "! echo not-a-uuid > $T/create 2>/dev/null"
chk "remove mdev" sh -c "echo 1 > $D/remove"
chk "mdev gone" test ! -e $D
chk "mtty-2 available_instances back to $b2" test "$(rd $T/available_instances)" -eq "$b2"

# mdpy and mbochs: print how every sibling type moves when one instance exists
for T in /sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga \
	/sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-small; do
	P=${T%/*}; U=$(new_uuid); before=$(cat $P/*/available_instances | tr '\n' ' ')
	b=$(rd $T/available_instances)
	chk "$(basename $T): create" sh -c "echo $U > $T/create"
	a=$(rd $T/available_instances)
	note "$(basename $T) created; $(ls $P | tr '\n' ' ')available_instances: $before-> $(cat $P/*/available_instances | tr '\n' ' ')"
	chk "$(basename $T): available_instances $b -> $a" test "$a" -eq $((b - 1))
	chk "$(basename $T): remove" sh -c "echo 1 > /sys/bus/mdev/devices/$U/remove"
	chk "$(basename $T): available_instances back to $b" test "$(rd $T/available_instances)" -eq "$b"
done

# ---- SR-IOV on the emulated NVMe PF
for d in /sys/bus/pci/devices/*; do
	note "pci $(basename $d) class=$(rd $d/class) id=$(rd $d/vendor):$(rd $d/device) iommu_group=$(link_name $d/iommu_group)" \
		"driver=$(link_name $d/driver) link=$(rd $d/current_link_speed)/$(rd $d/current_link_width)" \
		"max=$(rd $d/max_link_speed)/$(rd $d/max_link_width)"
done
PF=
for d in /sys/bus/pci/devices/*; do [ -f $d/sriov_totalvfs ] && PF=$d && break; done
chk "found an SR-IOV PF" test -n "$PF"
[ -n "$PF" ] || { finish; exit; }
note "PF $(basename $PF) vendor=$(rd $PF/vendor) device=$(rd $PF/device) class=$(rd $PF/class) driver=$(link_name $PF/driver) iommu_group=$(link_name $PF/iommu_group)"
for f in $PF/sriov_*; do note "  $(basename $f)=$(rd $f)"; done
chk "sriov_drivers_autoprobe can be set to 0" sh -c "echo 0 > $PF/sriov_drivers_autoprobe"
tot=$(rd $PF/sriov_totalvfs)
chk "sriov_numvfs > sriov_totalvfs refused" sh -c "! echo $((tot + 1)) > $PF/sriov_numvfs 2>/dev/null"
chk "enable 2 VFs" sh -c "echo 2 > $PF/sriov_numvfs"
chk "sriov_numvfs reads 2" test "$(rd $PF/sriov_numvfs)" = 2
chk "virtfn0 and virtfn1 links, no virtfn2" test -e $PF/virtfn0 -a -e $PF/virtfn1 -a ! -e $PF/virtfn2
for v in $PF/virtfn*; do
	V=$(readlink -f $v)
	note "$(basename $v) -> $(basename $V) device=$(rd $V/device) driver=$(link_name $V/driver) iommu_group=$(link_name $V/iommu_group)"
done
VF=$(readlink -f $PF/virtfn0)
chk "VF physfn links back to the PF" test "$(readlink -f $VF/physfn)" = "$(readlink -f $PF)"
chk "VF not probed (autoprobe 0)" test ! -e $VF/driver
chk "changing a non-zero sriov_numvfs refused" sh -c "! echo 3 > $PF/sriov_numvfs 2>/dev/null"
chk "VF has its own iommu_group" test -e $VF/iommu_group -a "$(link_name $VF/iommu_group)" != "$(link_name $PF/iommu_group)"
echo vfio-pci >$VF/driver_override
basename $VF >/sys/bus/pci/drivers_probe
chk "VF bound to vfio-pci via driver_override" test "$(link_name $VF/driver)" = vfio-pci
chk "/dev/vfio/$(link_name $VF/iommu_group) exists" test -c "/dev/vfio/$(link_name $VF/iommu_group)"
basename $VF >$VF/driver/unbind
chk "disable VFs" sh -c "echo 0 > $PF/sriov_numvfs"
chk "virtfn links gone" test ! -e $PF/virtfn0
echo 1 >$PF/sriov_drivers_autoprobe
finish
