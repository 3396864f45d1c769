#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks `vgpuctl types/list/doctor --json` against sysfs read directly, before and after an mdev exists.
. /vm/lib.sh
need_vgpuctl
note "$(vgpuctl --version 2>&1)"
TYPES='/sys/class/mdev_bus/*/mdev_supported_types/*'   # a glob, expanded where used
SMALL=/sys/class/mdev_bus/mbochs/mdev_supported_types/mbochs-small

# same ID, however vgpuctl spells it: "0x1234", "1234" or 4660 for sysfs "0x1234"
same_id() { [ "$1" = "$2" ] || [ "$1" = "${2#0x}" ] || [ "$1" = "$(printf %d "$2")" ]; }

# every type directory, with what sysfs says right now
check_types() {
	vgpuctl types --json >/tmp/types.json
	chk "types --json exits 0 ($1)" test $? -eq 0
	json_items </tmp/types.json >/tmp/types.lines
	chk "types: one entry per type directory ($1)" test "$(wc -l </tmp/types.lines)" -eq "$(ls -d $TYPES | wc -l)"
	for t in $TYPES; do
		p=${t%/mdev_supported_types/*} && p=${p##*/} && id=${t##*/}
		l=$(grep "\"parent\":\"$p\"" /tmp/types.lines | grep "\"type\":\"$id\"")
		if [ -z "$l" ]; then nok "types: $p/$id listed ($1)" && continue; fi
		chk "types: $p/$id available_instances $(rd $t/available_instances) ($1)" \
			test "$(echo "$l" | jfield available_instances)" = "$(rd $t/available_instances)"
		[ "$1" = before ] || continue
		for k in parent type name device_api available_instances framebuffer_bytes max_instances; do
			echo "$l" | grep -q "\"$k\":" || nok "types: $p/$id has key $k"
		done
		chk "types: $p/$id device_api" test "$(echo "$l" | jfield device_api)" = "$(rd $t/device_api)"
		chk "types: $p/$id name '$(rd $t/name)'" test "$(echo "$l" | jfield name)" = "$(rd $t/name | sed 's/, /,/g')"
		note "types: $l"
	done
}
check_types before
for t in small:4 medium:16 large:64; do
	l=$(grep '"type":"mbochs-'${t%:*}'"' /tmp/types.lines)
	chk "types: mbochs-${t%:*} framebuffer_bytes ${t#*:} MiB" test "$(echo "$l" | jfield framebuffer_bytes)" = $((${t#*:} << 20))
done
chk "types mbochs: only mbochs' 3 types" \
	test "$(vgpuctl types mbochs --json | json_items | grep -c '"parent":"mbochs"')" = 3
vgpuctl types >/tmp/types.txt; chk "types (text) exits 0" test $? -eq 0
sed 's/^/# /' /tmp/types.txt

# GPUs: every display-class PCI function, with its IDs, driver and IOMMU group
vgpuctl list --json >/tmp/list.json
chk "list --json exits 0" test $? -eq 0
json_items gpus </tmp/list.json >/tmp/gpus.lines
ngpu=0
for d in /sys/bus/pci/devices/*; do
	case $(rd $d/class) in 0x03*) ;; *) continue ;; esac
	ngpu=$((ngpu + 1)) b=${d##*/}
	l=$(grep "\"bdf\":\"$b\"" /tmp/gpus.lines)
	note "list: gpu $l"
	chk "list: gpu $b listed" test -n "$l"
	for k in bdf vendor_id device_id driver iommu_group link sriov vfs; do
		echo "$l" | grep -q "\"$k\":" || nok "list: gpu $b has key $k"
	done
	chk "list: gpu $b vendor_id $(rd $d/vendor)" same_id "$(echo "$l" | jfield vendor_id)" "$(rd $d/vendor)"
	chk "list: gpu $b device_id $(rd $d/device)" same_id "$(echo "$l" | jfield device_id)" "$(rd $d/device)"
	chk "list: gpu $b iommu_group $(link_name $d/iommu_group)" \
		test "$(echo "$l" | jfield iommu_group)" = "$(link_name $d/iommu_group)"
	drv=$(link_name $d/driver) && [ "$drv" = "<none>" ] && drv=null
	chk "list: gpu $b driver $drv" test "$(echo "$l" | jfield driver)" = "$drv"
done
chk "list: $ngpu display-class function(s), as many gpus" test "$(wc -l </tmp/gpus.lines)" -eq $ngpu
chk "list: no instances yet" test "$(json_items instances </tmp/list.json | wc -l)" -eq 0

# one mbochs-small and one mtty-2 instance, made behind vgpuctl's back
U=$(new_uuid) U2=$(new_uuid)
echo "$U" >$SMALL/create && echo "$U2" >/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create
chk "created $U (mbochs-small) and $U2 (mtty-2) through sysfs" test -d /sys/bus/mdev/devices/$U -a -d /sys/bus/mdev/devices/$U2
vgpuctl list --json >/tmp/list.json
json_items instances </tmp/list.json >/tmp/inst.lines
sed 's/^/# list: instance /' /tmp/inst.lines
chk "list: as many instances as /sys/bus/mdev/devices" \
	test "$(wc -l </tmp/inst.lines)" -eq "$(ls /sys/bus/mdev/devices | wc -l)"
l=$(grep "\"uuid\":\"$U\"" /tmp/inst.lines)
chk "list: $U has parent mbochs" test "$(echo "$l" | jfield parent)" = mbochs
chk "list: $U has type mbochs-small" test "$(echo "$l" | jfield type)" = mbochs-small
l=$(grep "\"uuid\":\"$U2\"" /tmp/inst.lines)
chk "list: $U2 has parent mtty, type mtty-2" test "$(echo "$l" | jfield parent)/$(echo "$l" | jfield type)" = mtty/mtty-2
check_types after
chk "types: mbochs-small available_instances one lower (63)" \
	test "$(grep '"type":"mbochs-small"' /tmp/types.lines | jfield available_instances)" = 63
vgpuctl list >/tmp/list.txt; chk "list (text) exits 0" test $? -eq 0
sed 's/^/# /' /tmp/list.txt
echo 1 >/sys/bus/mdev/devices/$U/remove && echo 1 >/sys/bus/mdev/devices/$U2/remove
chk "list: instances gone after remove" test "$(vgpuctl list --json | json_items instances | wc -l)" -eq 0

# doctor: runs, answers in JSON with an id and status per check (which checks pass is its business)
vgpuctl doctor --json >/tmp/doctor.json
rc=$?
chk "doctor --json exits 0 or 1 (rc=$rc)" test $rc -le 1
json_items checks </tmp/doctor.json >/tmp/doctor.lines
[ -s /tmp/doctor.lines ] || json_items </tmp/doctor.json >/tmp/doctor.lines
n=$(wc -l </tmp/doctor.lines)
chk "doctor --json: $n checks, each with id and status" \
	test "$n" -gt 0 -a "$(grep '"id":' /tmp/doctor.lines | grep -c '"status":')" -eq "$n"
ng=$(ls /sys/kernel/iommu_groups | wc -l)
chk "doctor: iommu.enabled passes ($ng IOMMU groups in sysfs)" \
	test "$(grep '"id":"iommu.enabled"' /tmp/doctor.lines | jfield status)" = pass
while read -r l; do note "doctor: $(echo "$l" | jfield id)=$(echo "$l" | jfield status): $(echo "$l" | jfield summary)"; done </tmp/doctor.lines
finish
