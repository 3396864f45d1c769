#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# assign.sh — `vgpuctl xml/assign/detach` and the domain column of `list` from the outside:
# exact <hostdev> elements and QEMU arguments for an mdev, a plain VF and an NVIDIA vendor-VFIO
# VF, each valid against libvirt's own domain schema (virt-xml-validate); attach and detach
# against libvirt's test driver (test:///FILE, in-process, no daemon); list with and without
# libvirt. The test driver forgets changes when the process ends, so idempotency is shown with
# a domain file that already holds a device (the sequence on one connection is in test-assign.c);
# it cannot attach to running domains, so changes go to configurations (--config, or shut-off).
# Needs VGPUCTL and FIXTURES (set by tests/meson.build), virt-xml-validate (libvirt-clients).
source "$(dirname "$0")/testlib.sh"

here=$(cd "$(dirname "$0")" && pwd)
schema=$here/../../doc/schema
unset LIBVIRT_DEFAULT_URI

# run HOST ARGS...: vgpuctl on a fixture; out/err/rc in $tmp
run() {
        local host=$1; shift
        VGPU_ROOT="$FIXTURES/$host" "$VGPUCTL" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
}
out_is() {      # out_is TEXT WHAT
        if [[ $(cat "$tmp/out") == "$1" ]]; then ok; else bad "$2: got '$(cat "$tmp/out")', expected '$1'"; fi
}
err_is() {      # err_is TEXT WHAT: the one line on stderr
        if [[ $(cat "$tmp/err") == "vgpuctl: $1" ]]; then ok; else bad "$2: stderr '$(cat "$tmp/err")', expected 'vgpuctl: $1'"; fi
}
jq_py() {
        python3 -c "import json,sys; d=json.load(open('$tmp/out')); print($1)"
}

U1=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
U2=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02
U3=c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4

# --- the element and the QEMU argument, exact
mdev_xml="<hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no'><source><address uuid='$U1'/></source></hostdev>"
run nvidia-mdev xml $U1;                        expect 0 "xml mdev"; out_is "$mdev_xml" "xml mdev"
cp "$tmp/out" "$tmp/mdev.xml"
run nvidia-mdev xml ${U1^^} --display-off;      expect 0 "xml mdev --display-off"
out_is "<hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no' display='off'><source><address uuid='$U1'/></source></hostdev>" "xml --display-off"
cp "$tmp/out" "$tmp/mdev-display.xml"
run nvidia-mdev xml $U1 --qemu;                 expect 0 "xml --qemu mdev"; out_is "-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/$U1" "xml --qemu mdev"
run nvidia-sriov-vfio xml 41:00.4;              expect 0 "xml vendor-VFIO VF"
out_is "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x41' slot='0x00' function='0x4'/></source></hostdev>" "xml vendor-VFIO VF (managed='no')"
cp "$tmp/out" "$tmp/vfio.xml"
run nvidia-sriov-vfio xml 0000:41:00.4 --qemu;  expect 0 "xml --qemu VF"; out_is "-device vfio-pci,host=0000:41:00.4" "xml --qemu VF"
run amd-mxgpu xml 03:02.1;                      expect 0 "xml plain VF"
out_is "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x02' function='0x1'/></source></hostdev>" "xml plain VF (managed='yes')"
cp "$tmp/out" "$tmp/vf.xml"
run nvidia-mdev xml $U1 --json;                 expect 0 "xml --json"
[[ $(jq_py "(d['kind'], d['device'], d['managed'], d['xml'] == '''$mdev_xml''', d['qemu'])") == "('mdev', '$U1', False, True, ['-device', 'vfio-pci,sysfsdev=/sys/bus/mdev/devices/$U1'])" ]] && ok ||
        bad "xml --json: $(cat "$tmp/out")"

# --- libvirt's own schema accepts each, inside a minimal domain
if command -v virt-xml-validate >/dev/null; then
        for x in mdev mdev-display vfio vf; do
                printf "<domain type='test'><name>t</name><memory>1048576</memory><os><type>hvm</type></os><devices>%s</devices></domain>\n" \
                        "$(cat "$tmp/$x.xml")" >"$tmp/dom-$x.xml"
                virt-xml-validate "$tmp/dom-$x.xml" domain >"$tmp/v" 2>&1 && ok || bad "$x hostdev does not validate: $(cat "$tmp/v")"
        done
        # and the check would catch a bad element
        sed "s/model='vfio-pci'/model='vfio-gpu'/" "$tmp/dom-mdev.xml" >"$tmp/dom-bad.xml"
        virt-xml-validate "$tmp/dom-bad.xml" domain >/dev/null 2>&1 && bad "virt-xml-validate accepts a bad model" || ok
else
        bad "virt-xml-validate is missing: run scripts/install-deps.sh --test (Debian package libvirt-clients)"
fi

# --- refusals, with what and why
run nvidia-mdev xml 00000000-0000-4000-8000-000000000000; expect 1 "xml of an unknown UUID"
err_is "no vGPU 00000000-0000-4000-8000-000000000000 on this host (no such device in /sys/bus/mdev/devices; see 'vgpuctl list')" "unknown UUID"
run nvidia-mdev xml 3b:00.0;                    expect 1 "xml of a GPU with vGPUs"
run nvidia-sriov-vfio xml 41:00.5;              expect 1 "xml of a vendor-VFIO VF without a type"
grep -q "0000:41:00.5 has no vGPU type set" "$tmp/err" && ok || bad "untyped VF message: $(cat "$tmp/err")"
run nvidia-mdev xml vm1;                        expect 2 "xml of neither UUID nor BDF"
run nvidia-mdev xml;                            expect 2 "xml without argument"

# --- attach and detach through libvirt's test driver
cat >"$tmp/node.xml" <<EOF
<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-off</name><memory>1048576</memory><os><type arch='x86_64'>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-held</name><memory>1048576</memory><os><type arch='x86_64'>hvm</type></os>
    <devices>
      <hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='${U2^^}'/></source></hostdev>
      <hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0' bus='65' slot='0' function='4'/></source></hostdev>
      <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x02' function='0x1'/></source></hostdev>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='test'>
    <name>vm-run</name><memory>1048576</memory><os><type arch='x86_64'>hvm</type></os>
    <devices>
      <hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='$U3'/></source></hostdev>
    </devices>
  </domain>
</node>
EOF
URI=test://$tmp/node.xml
run nvidia-mdev assign $U1 --domain vm-off --connect "$URI"; expect 0 "assign to a shut-off domain"
out_is "attached $U1 to domain vm-off (configuration)" "assign"
run nvidia-mdev assign $U1 -d vm-off -c "$URI" --config --json; expect 0 "assign --config --json"
[[ $(jq_py "(d['device'], d['domain'], d['changed'], d['config'], d['live'])") == "('$U1', 'vm-off', True, True, False)" ]] && ok || bad "assign --json: $(cat "$tmp/out")"
python3 "$here/validate.py" "$schema/assign.schema.json" "$tmp/out" && ok || bad "assign --json does not match assign.schema.json"
run nvidia-mdev assign $U2 --domain vm-held -c "$URI"; expect 0 "assign of what the domain holds (no-op)"
out_is "$U2 is already attached to domain vm-held: nothing to do" "assign again"
run nvidia-mdev assign $U3 --domain vm-run -c "$URI" --live --json; expect 0 "assign --live of what the running domain holds"
[[ $(jq_py "d['changed']") == False ]] && ok || bad "assign again reports a change"
run nvidia-mdev assign $U1 --domain vm-run -c "$URI" --config; expect 0 "assign --config to a running domain"
run nvidia-mdev assign $U1 --domain vm-run -c "$URI"; expect 1 "assign live: the test driver cannot"
grep -q "^vgpuctl: attaching $U1 to domain 'vm-run' (its configuration and the running domain): .*not supported" "$tmp/err" && ok ||
        bad "live attach refusal lacks libvirt's reason: $(cat "$tmp/err")"
run nvidia-mdev assign $U1 --domain vm-off -c "$URI" --live; expect 1 "assign --live to a shut-off domain"
err_is "domain 'vm-off' is not running: --live needs a running domain (use --config)" "--live on shut-off"
run nvidia-sriov-vfio assign 41:00.4 --domain vm-off -c "$URI"; expect 0 "assign a vendor-VFIO VF"
run nvidia-sriov-vfio assign 41:00.4 --domain vm-held -c "$URI"; expect 0 "assign a VF the domain holds (bus='65' is 0x41)"
out_is "0000:41:00.4 is already attached to domain vm-held: nothing to do" "VF assign again"

run nvidia-mdev detach $U2 --domain vm-held -c "$URI"; expect 0 "detach"
out_is "detached $U2 from domain vm-held (configuration)" "detach"
run nvidia-mdev detach $U1 --domain vm-held -c "$URI"; expect 1 "detach of what is not there"
err_is "$U1 is not attached to domain 'vm-held' (not in its configuration)" "detach again"
# detach needs no device on the host: the VM may name one that is gone
run empty detach 41:00.4 --domain vm-held -c "$URI"; expect 0 "detach of a device the host no longer has"

run nvidia-mdev assign $U1 --domain vm-nope -c "$URI"; expect 1 "assign to an unknown domain"
err_is "no domain named 'vm-nope' in libvirt (see 'virsh list --all')" "unknown domain"
run nvidia-mdev detach $U1 --domain vm-nope -c "$URI"; expect 1 "detach from an unknown domain"
run nvidia-mdev assign 00000000-0000-4000-8000-000000000000 --domain vm-off -c "$URI"; expect 1 "assign of an unknown UUID"
grep -q "no vGPU 00000000-0000-4000-8000-000000000000 on this host" "$tmp/err" && ok || bad "unknown UUID: $(cat "$tmp/err")"
run nvidia-mdev assign $U1 -c "$URI";           expect 2 "assign without --domain"
run nvidia-mdev assign nonsense -d vm-off;      expect 2 "assign of neither UUID nor BDF"
run nvidia-mdev assign $U1 -d vm-off -c "test://$tmp/missing.xml"; expect 1 "assign with an unusable URI"
grep -q "^vgpuctl: connecting to libvirt (test://$tmp/missing.xml) failed: " "$tmp/err" && [[ $(wc -l <"$tmp/err") == 1 ]] && ok ||
        bad "connection failure is not one line naming the URI: $(cat "$tmp/err")"

# --- list: the domain holding each instance
LIBVIRT_DEFAULT_URI=$URI run nvidia-mdev list --json; expect 0 "list --json with libvirt"
python3 "$here/validate.py" "$schema/list.schema.json" "$tmp/out" && ok || bad "list with domains does not match list.schema.json"
[[ $(jq_py "[(i['uuid'], i['domain']) for i in d['instances']]") == "[('$U1', None), ('$U2', 'vm-held'), ('$U3', 'vm-run')]" ]] && ok ||
        bad "list domains: $(jq_py "d['instances']")"
LIBVIRT_DEFAULT_URI=$URI run nvidia-mdev list; expect 0 "list (table) with libvirt"
grep -q "^$U3 .* vm-run$" "$tmp/out" && grep -qE "GROUP +DOMAIN$" "$tmp/out" && ok || bad "table lacks the domain column: $(cat "$tmp/out")"
LIBVIRT_DEFAULT_URI=$URI run nvidia-sriov-vfio list --json
[[ $(jq_py "[(i['parent'], i['domain']) for i in d['instances']]") == "[('0000:41:00.4', 'vm-held')]" ]] && ok ||
        bad "vendor-VFIO VF's domain: $(jq_py "d['instances']")"
# a plain VF assigned whole is held too (a GPU row's domain), and only that one
LIBVIRT_DEFAULT_URI=$URI run amd-mxgpu list --json; expect 0 "list --json of a host with a VF in a domain"
python3 "$here/validate.py" "$schema/list.schema.json" "$tmp/out" && ok || bad "list with a GPU's domain does not match list.schema.json"
[[ $(jq_py "[(g['bdf'], g['domain']) for g in d['gpus'] if g['domain']]") == "[('0000:03:02.1', 'vm-held')]" ]] && ok ||
        bad "plain VF's domain: $(jq_py "[(g['bdf'], g.get('domain')) for g in d['gpus']]")"
LIBVIRT_DEFAULT_URI=$URI run amd-mxgpu list; expect 0 "list (table) of a host with a VF in a domain"
grep -q "^ *0000:03:02.1 .* domain vm-held$" "$tmp/out" && ok || bad "table row of the VF lacks its domain: $(grep 03:02.1 "$tmp/out")"
# without libvirt: null, silently, and libvirt is not even loaded
run nvidia-mdev list --json; expect 0 "list --json without libvirt"
[[ $(jq_py "[i['domain'] for i in d['instances']]") == "[None, None, None]" && ! -s $tmp/err ]] && ok || bad "list without libvirt: $(cat "$tmp/err")"
VGPU_ROOT="$FIXTURES/nvidia-mdev" LD_DEBUG=files "$VGPUCTL" list >/dev/null 2>"$tmp/ld"
grep -q "libvirt.so" "$tmp/ld" && bad "list loads libvirt without a libvirt daemon" || ok
# a libvirt that does not answer: a warning, and the list
LIBVIRT_DEFAULT_URI="test://$tmp/missing.xml" run nvidia-mdev list --json; expect 0 "list with an unusable LIBVIRT_DEFAULT_URI"
grep -q "^vgpuctl: warning: cannot tell which VMs hold the vGPUs: connecting to libvirt" "$tmp/err" && ok || bad "no warning: $(cat "$tmp/err")"
[[ $(jq_py "[i['domain'] for i in d['instances']]") == "[None, None, None]" ]] && ok || bad "domains from nowhere"

summary
