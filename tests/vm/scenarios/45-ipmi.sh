#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The IPMI collector against QEMU's emulated BMC (ipmi-bmc-sim on isa-ipmi-kcs, see run.sh):
# the kernel's ipmi_si + ipmi_devintf give /dev/ipmi0, libvgpu reads the sensors and the SEL
# through it (ipmi-check, built from tests/vm/ipmi-check.c), an over-temperature entry added
# to the SEL shows up in the next incremental read, alone, and not again in the one after.
. /vm/lib.sh
command -v ipmi-check >/dev/null 2>&1 || skip_all "no ipmi-check binary"

modprobe ipmi_devintf || note "modprobe ipmi_devintf failed"
# the BMC is described by ACPI (IPI0001); if the probe misses it, the KCS ports QEMU uses
modprobe ipmi_si || note "modprobe ipmi_si failed"
i=0
while [ ! -e /dev/ipmi0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /dev/ipmi0 ]; then
	note "no /dev/ipmi0 after ipmi_si's probe: trying type=kcs ports=0xca2"
	rmmod ipmi_si 2>/dev/null
	modprobe ipmi_si type=kcs ports=0xca2
	i=0
	while [ ! -e /dev/ipmi0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
chk "/dev/ipmi0 exists (ipmi_si found the emulated BMC)" test -c /dev/ipmi0
note "$(dmesg | grep -i ipmi | tail -n 5 | tr '\n' ' ')"
[ -c /dev/ipmi0 ] || { finish; exit 1; }

ipmi-check >/tmp/ipmi.out 2>/tmp/ipmi.err
rc=$?
while IFS= read -r l; do note "$l"; done </tmp/ipmi.out
while IFS= read -r l; do note "stderr: $l"; done </tmp/ipmi.err
val() { sed -n "s/^$1=//p" /tmp/ipmi.out | head -n1; }
chk "ipmi-check exits 0" test $rc -eq 0
chk "vgpu_ipmi_open succeeds" test "$(val open)" = 0
chk "vgpu_ipmi_sensors_read succeeds (QEMU's default SDR has only the watchdog: no readings)" test "$(val sensors)" = 0
chk "first SEL read succeeds" test -n "$(val first_count)"
added=$(val added1) added2=$(val added2)
chk "Add SEL Entry returned a record id ($added)" sh -c "test '$added' -ge 0"
chk "second read: exactly one new entry" test "$(val second_count)" = 1
e=$(val second_entry)
chk "second read: it is the record we added ($added)" test "${e%%|*}" = "$added"
chk "second read: sensor type Temperature" sh -c "echo '$e' | cut -d'|' -f2 | grep -qx Temperature"
chk "second read: 'Upper Critical[ -]*going high'" sh -c "echo '$e' | cut -d'|' -f4 | grep -qi 'upper critical.*going high'"
chk "second read: severity critical" sh -c "echo '$e' | cut -d'|' -f5 | grep -qx critical"
chk "second read: flagged over-temperature" sh -c "echo '$e' | grep -q 'over_temperature=1'"
e=$(val third_entry)
chk "third read, after a second entry ($added2): exactly it, the first one not again" \
	sh -c "test '$(val third_count)' = 1 && test '${e%%|*}' = '$added2' && test '$added2' != '$added'"
chk "fourth read: nothing new" test "$(val fourth_count)" = 0

# vgpud's IPMI collector on the same BMC: the SEL as found is the baseline; an entry added
# while it runs becomes one bmc_event, logged at crit as an over-temperature
if command -v vgpud >/dev/null 2>&1; then
	mkdir -p /run/vgpud
	printf '[daemon]\npoll-interval = 200ms\nrestore-on-start = no\n[metrics]\nlisten = off\n' >/tmp/vgpud-ipmi.conf
	vgpud --config /tmp/vgpud-ipmi.conf -v >/tmp/vgpud-ipmi.log 2>&1 &
	pid=$!
	i=0
	while ! grep -q "event log has" /tmp/vgpud-ipmi.log && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	chk "vgpud: SEL baseline logged (2 entries)" grep -q "the BMC's event log has 2 entries" /tmp/vgpud-ipmi.log
	id=$(ipmi-check add | sed -n 's/^added=//p')
	i=0
	while ! grep -q "BMC SEL #" /tmp/vgpud-ipmi.log && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 1         # a few more polls: the entry must not come again
	chk "vgpud: one bmc_event, for the new entry #$id" test "$(grep -c "BMC SEL #" /tmp/vgpud-ipmi.log)" = 1
	chk "vgpud: logged at crit as an over-temperature" grep -q "crit: BMC SEL #$id: Temperature .*(over-temperature)" /tmp/vgpud-ipmi.log
	chk "vgpud: IPMI collector not reported off" sh -c "! grep -q 'IPMI collector off' /tmp/vgpud-ipmi.log"
	kill $pid && wait $pid
	while IFS= read -r l; do note "vgpud: $l"; done </tmp/vgpud-ipmi.log
else
	note "no vgpud in the guest: its IPMI collector is not checked here"
fi

# vgpud's BMC notifications through a real snmpd (AgentX master on a UNIX socket) to a real
# snmptrapd on loopback: an over-temperature and an under-voltage entry added to the SEL while
# vgpud runs arrive as vgpuBmcOverTemperature (.0.4) and vgpuBmcUnderVoltage (.0.5), each with
# vgpuEventMessage (.1.4.4.0) naming the record and no GPU varbinds (the BMC's, not a GPU's)
MIB=1.3.6.1.3.9835
if command -v vgpud >/dev/null 2>&1 && [ -x /usr/sbin/snmpd ] && [ -x /usr/sbin/snmptrapd ]; then
	ifconfig lo 127.0.0.1 up 2>/dev/null || ip link set lo up
	S=/tmp/snmp
	mkdir -p $S/state /run/agentx /run/vgpud
	export SNMP_PERSISTENT_DIR=$S/state MIBS= MIBDIRS=/nonexistent
	printf 'master agentx\nagentXSocket unix:/run/agentx/master\nagentXPerms 0600 0700\nagentAddress udp:127.0.0.1:20161\nrocommunity public 127.0.0.1\ntrap2sink 127.0.0.1:20162 public\n' >$S/snmpd.conf
	printf 'authCommunity log public\ndoNotRetainNotificationLogs yes\n' >$S/snmptrapd.conf
	/usr/sbin/snmptrapd -f -C -c $S/snmptrapd.conf -On -Lf $S/traps.log udp:127.0.0.1:20162 >/dev/null 2>&1 &
	trapd=$!
	/usr/sbin/snmpd -f -C -c $S/snmpd.conf -Lf $S/snmpd.log >/dev/null 2>&1 &
	snmpd=$!
	i=0
	while [ ! -S /run/agentx/master ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	chk "snmpd made its AgentX socket" test -S /run/agentx/master
	printf '[daemon]\npoll-interval = 200ms\nrestore-on-start = no\n[metrics]\nlisten = off\n[snmp]\nenable = yes\nagentx-socket = /run/agentx/master\n' >/tmp/vgpud-snmp.conf
	vgpud --config /tmp/vgpud-snmp.conf -v >/tmp/vgpud-snmp.log 2>&1 &
	pid=$!
	i=0
	# (the subagent starts after the collectors' first poll: wait for both)
	while ! { grep -q "event log has" /tmp/vgpud-snmp.log && grep -q "AgentX subagent of" /tmp/vgpud-snmp.log; } &&
		[ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	chk "vgpud: AgentX subagent of the guest's snmpd" grep -q "snmp: AgentX subagent of /run/agentx/master" /tmp/vgpud-snmp.log
	chk "vgpud: SEL baseline read" grep -q "event log has" /tmp/vgpud-snmp.log
	sleep 0.5       # the subagent's registration has gone through the master
	ot=$(ipmi-check add | sed -n 's/^added=//p')
	uv=$(ipmi-check add-undervolt | sed -n 's/^added=//p')
	note "snmp: added over-temperature #$ot, under-voltage #$uv"
	i=0
	while ! grep -q "OID: \.$MIB\.0\.5" $S/traps.log 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 1         # a few more polls: each entry must not come again
	# snmptrapd -Lf: one line per notification, its varbinds separated by tabs
	grep -E "OID: \.$MIB\.0\.4([^0-9.]|$)" $S/traps.log >$S/ot.trap
	grep -E "OID: \.$MIB\.0\.5([^0-9.]|$)" $S/traps.log >$S/uv.trap
	chk "snmptrapd: one vgpuBmcOverTemperature" test "$(wc -l <$S/ot.trap)" = 1
	chk "snmptrapd: one vgpuBmcUnderVoltage" test "$(wc -l <$S/uv.trap)" = 1
	chk "vgpuBmcOverTemperature: vgpuEventMessage names SEL #$ot, Temperature, over-temperature" \
		grep -qE "\.$MIB\.1\.4\.4\.0 = STRING: \"BMC SEL #$ot: Temperature .*\(over-temperature\)\"" $S/ot.trap
	chk "vgpuBmcUnderVoltage: vgpuEventMessage names SEL #$uv, Voltage, under-voltage" \
		grep -qE "\.$MIB\.1\.4\.4\.0 = STRING: \"BMC SEL #$uv: Voltage .*\(under-voltage\)\"" $S/uv.trap
	chk "BMC notifications carry no GPU varbinds (vgpuEventBdf, Temperature, Xid)" \
		sh -c "! grep -qE '\.$MIB\.1\.4\.[123]\.0 ' $S/ot.trap $S/uv.trap"
	kill $pid && wait $pid
	kill $snmpd $trapd
	wait $snmpd $trapd 2>/dev/null
	while IFS= read -r l; do note "traps: $l"; done <$S/traps.log
	while IFS= read -r l; do note "snmpd: $l"; done <$S/snmpd.log
	grep -v "debug: poll" /tmp/vgpud-snmp.log | tail -n 20 | while IFS= read -r l; do note "vgpud: $l"; done
	unset SNMP_PERSISTENT_DIR MIBS MIBDIRS
else
	note "no vgpud, snmpd or snmptrapd in the guest: the BMC notifications are not checked here"
fi

# `vgpuctl sel` on the same BMC: ipmitool's columns, each kind of entry as we added it
if command -v vgpuctl >/dev/null 2>&1; then
	ot=$(ipmi-check add | sed -n 's/^added=//p')
	uv=$(ipmi-check add-undervolt | sed -n 's/^added=//p')
	de=$(ipmi-check add-deassert | sed -n 's/^added=//p')
	note "added over-temperature #$ot, under-voltage #$uv, deasserted #$de"
	vgpuctl sel >/tmp/sel.out 2>/tmp/sel.err
	rc=$?
	while IFS= read -r l; do note "sel: $l"; done </tmp/sel.out
	while IFS= read -r l; do note "sel stderr: $l"; done </tmp/sel.err
	chk "vgpuctl sel exits 0" test $rc -eq 0
	row() { grep -qE "^ *$1 \| [0-9]{4}-[0-9]{2}-[0-9]{2} \| [0-9]{2}:[0-9]{2}:[0-9]{2} \| $2" /tmp/sel.out; }
	chk "sel: #$ot Temperature, upper critical going high, Asserted, critical, over-temperature" \
		row "$ot" 'Temperature .* \| Upper Critical[ -]*going high \| Asserted \| critical \| over-temperature$'
	chk "sel: #$uv Voltage, lower critical going low, Asserted, critical, under-voltage" \
		row "$uv" 'Voltage .* \| Lower Critical[ -]*going low \| Asserted \| critical \| under-voltage$'
	chk "sel: #$de Deasserted, not flagged" \
		row "$de" 'Temperature .* \| Upper Critical[ -]*going high \| Deasserted \| [a-z]+$'
	chk "sel: every entry, in record order (first #1 or later, #$de last)" \
		sh -c "tail -n 1 /tmp/sel.out | grep -qE '^ *$de \\|'"
	vgpuctl sel --json >/tmp/sel.json 2>/tmp/sel.err
	rc=$?
	note "sel --json: $(head -c 1500 /tmp/sel.json)"
	chk "vgpuctl sel --json exits 0" test $rc -eq 0
	chk "sel --json: #$ot over_temperature true" \
		grep -qE "\{\"record_id\":$ot,[^}]*\"state\":\"Asserted\",\"severity\":\"critical\",\"over_temperature\":true,\"under_voltage\":false\}" /tmp/sel.json
	chk "sel --json: #$uv under_voltage true" \
		grep -qE "\{\"record_id\":$uv,[^}]*\"sensor_type\":\"Voltage\",[^}]*\"over_temperature\":false,\"under_voltage\":true\}" /tmp/sel.json
	chk "sel --json: #$de Deasserted, neither flag" \
		grep -qE "\{\"record_id\":$de,[^}]*\"state\":\"Deasserted\",[^}]*\"over_temperature\":false,\"under_voltage\":false\}" /tmp/sel.json
	# the support bundle carries the SEL when a BMC answers
	vgpuctl report -o /tmp/r.tar.gz >/tmp/report.out 2>&1
	chk "vgpuctl report exits 0 ($(tail -n 1 /tmp/report.out))" test $? -eq 0
	mkdir -p /tmp/r && tar -xzf /tmp/r.tar.gz -C /tmp/r 2>/dev/null
	chk "report: vgpuctl/sel.json has the under-voltage entry #$uv" grep -qE "\"record_id\": *$uv," /tmp/r/vgpuctl/sel.json
	chk "report: vgpuctl/sel.txt as \`vgpuctl sel\` prints it" grep -qE "^ *$uv \| .* \| under-voltage$" /tmp/r/vgpuctl/sel.txt
	chk "sel --json: timestamps in ISO 8601 UTC" grep -qE "\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\"" /tmp/sel.json
fi
finish
