#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vgpud on the real kernel: a parent that comes back (rmmod/modprobe mtty) gets its saved
# instances back, same UUIDs, within seconds although the poll interval is 10 minutes, so only
# the kernel's uevent can explain it; and only that parent: an mbochs instance removed by hand
# is not recreated (per-parent restore). The daemon's log says "parent appeared" and "restored".
. /vm/lib.sh
need_vgpuctl
command -v vgpud >/dev/null 2>&1 || skip_all "no vgpud binary"
uuids_of() { for d in /sys/bus/mdev/devices/*; do [ -e "$d" ] && [ "$(link_name $d/mdev_type)" = "$1" ] && echo "${d##*/}"; done | sort; }

cat >/tmp/d.yaml <<'Y'
version: 1
gpus:
  - parent: mtty
    devices:
      - type: mtty-2
        count: 2
  - parent: mbochs
    devices:
      - type: mbochs-small
        count: 2
Y
vgpuctl apply -f /tmp/d.yaml >/tmp/out 2>&1
chk "apply: exit 0" test $? -eq 0
tty=$(uuids_of mtty-2) small=$(uuids_of mbochs-small)
chk "apply: 2 mtty-2, 2 mbochs-small" test "$(echo $tty | wc -w) $(echo $small | wc -w)" = "2 2"

mkdir -p /etc/vgpuctl /run/vgpud
printf '[daemon]\npoll-interval = 10m\nrestore-on-start = no\n[metrics]\nlisten = off\n' >/tmp/vgpud.conf
vgpud --config /tmp/vgpud.conf -v >/tmp/vgpud.log 2>&1 &
pid=$!
i=0; while [ $i -lt 100 ] && [ ! -S /run/vgpud/vgpud.sock ]; do sleep 0.1; i=$((i + 1)); done
chk "vgpud: listening" test -S /run/vgpud/vgpud.sock
i=0; while [ $i -lt 50 ] && ! grep -q "listening to the kernel's uevents" /tmp/vgpud.log; do sleep 0.1; i=$((i + 1)); done
chk "vgpud: listens to the kernel's uevents" grep -q "listening to the kernel's uevents" /tmp/vgpud.log
sleep 1         # the first poll (at start) has seen mtty and mbochs

for u in $tty; do echo 1 >/sys/bus/mdev/devices/$u/remove; done
rmmod mtty
chk "rmmod mtty: gone" test ! -e /sys/class/mdev_bus/mtty
gone=$(echo "$small" | head -n1)
echo 1 >/sys/bus/mdev/devices/$gone/remove
chk "one mbochs-small removed by hand" test "$(uuids_of mbochs-small | wc -l)" = 1
modprobe mtty
t0=$(date +%s)
i=0; while [ $i -lt 100 ] && [ "$(echo $(uuids_of mtty-2))" != "$(echo $tty)" ]; do sleep 0.1; i=$((i + 1)); done
note "mtty instances back after $(($(date +%s) - t0)) s: $(uuids_of mtty-2 | tr '\n' ' ')"
chk "modprobe mtty: its 2 instances are back, same UUIDs, within 10 s" test "$(echo $(uuids_of mtty-2))" = "$(echo $tty)"
sleep 1
chk "the mbochs instance removed by hand is not recreated" test "$(uuids_of mbochs-small | wc -l)" = 1
chk "log: parent appeared (mtty)" grep -q "mtty: vGPU parent appeared" /tmp/vgpud.log
chk "log: restored on mtty" grep -q "parent appeared: restored /var/lib/vgpuctl/host.yaml on mtty: 2 changes" /tmp/vgpud.log
grep -q "on mbochs" /tmp/vgpud.log && nok "mbochs was not restored" || ok "mbochs was not restored"
grep -e uevent -e appeared -e restore /tmp/vgpud.log | head -n 16 | sed 's/^/# vgpud: /'

# clean up: the guest is shared by every scenario
kill $pid; wait $pid 2>/dev/null
for d in /sys/bus/mdev/devices/*; do [ -e "$d/remove" ] && echo 1 >"$d/remove"; done
rm -rf /etc/mdevctl.d/mtty /etc/mdevctl.d/mbochs /var/lib/vgpuctl/host.yaml /run/vgpud /tmp/vgpud.conf
finish
