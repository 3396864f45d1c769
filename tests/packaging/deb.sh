#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# deb.sh — the Debian packages end to end on this machine: build them with dpkg-buildpackage in
# a copy of the tree, lintian them (errors fail, warnings are listed), install them with apt-get,
# check that each file is where the programs look for it and that the programs run (the broker on
# a real etcd, serving its installed dashboard), then purge them and check that nothing of theirs
# is left and that no vgpud or vgpu-broker runs.
# Run by scripts/check.sh (not meson test: it installs into /usr, so it runs once, alone), which
# builds the packages beforehand, beside the meson tests, and names their directory in DEB_BUILT;
# without DEB_BUILT this script builds them.
# Needs root and scripts/install-deps.sh --test (debhelper, lintian, dpkg-dev, fakeroot).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PKGS=(vgpuctl vgpud vgpu-broker libvgpu0 libvgpu-dev libvgpu-cuda)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600)
export DEBIAN_FRONTEND=noninteractive

fail() { echo "deb: FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "deb: SKIP: needs root to install the packages"; exit 77; }

# Packages of ours already installed are somebody's: this test would replace and purge them.
for p in "${PKGS[@]}"; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
                fail "$p is installed on this machine already; purge it first (apt-get purge ${PKGS[*]})"
        fi
done
# ...and so is the state of a vgpuctl run outside VGPU_ROOT: the purge would delete it.
for d in /var/lib/vgpuctl /var/cache/vgpuctl /etc/cdi/vgpuctl.yaml; do
        [[ ! -e $d ]] || fail "$d exists on this machine; the purge at the end would delete it"
done

WORK=$(mktemp -d /var/tmp/vgpu-deb.XXXXXX)
installed=0
broker_pid= etcd_pid=
cleanup() {
        # the broker and etcd this test started, should a check fail while they run
        [[ -z $broker_pid ]] || kill "$broker_pid" 2>/dev/null || true
        [[ -z $etcd_pid ]] || kill "$etcd_pid" 2>/dev/null || true
        # a failed check must not leave the packages behind for the next run to trip on
        [[ $installed -eq 1 ]] && "${APT[@]}" purge "${PKGS[@]}" >/dev/null 2>&1
        rm -rf "$WORK"
}
trap cleanup EXIT

VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
if [[ -n ${DEB_BUILT:-} ]]; then
        # scripts/check.sh built them (scripts/build-deb.sh) beside the meson tests, from this tree
        echo "== the packages scripts/build-deb.sh built in $DEB_BUILT"
        cp "$DEB_BUILT"/*.deb "$DEB_BUILT"/*.changes "$DEB_BUILT"/*.buildinfo "$WORK/" ||
                fail "no packages in $DEB_BUILT"
else
        echo "== dpkg-buildpackage -us -uc -b (scripts/build-deb.sh)"
        "$SRC/scripts/build-deb.sh" "$WORK" >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log"; fail "the package build failed"; }
fi
debs=()
for p in "${PKGS[@]}"; do
        d=$(ls "$WORK/${p}_${VERSION}_"*.deb 2>/dev/null | head -1)
        [[ -n $d ]] || fail "no $p package was built"
        debs+=("$d")
done
# Anything else built is a package we forgot here.
extra=$(printf '%s\n' "$WORK"/*.deb | grep -v -E "/($(IFS='|'; echo "${PKGS[*]}"))(-dbgsym)?_" || true)
[[ -z $extra ]] || fail "packages this test does not check: $extra"

# libvgpu dlopen()s libpci, libyaml and zlib (lib/meson.build says why), so dpkg-shlibdeps does
# not see them: debian/control names them, or a host without them could install the packages
libvgpu_deb=$(ls "$WORK"/libvgpu0_"$VERSION"_*.deb)
depends=$(dpkg-deb -f "$libvgpu_deb" Depends)
for p in libpci3 libyaml-0-2 zlib1g; do
        [[ ", $depends," == *", $p"[\ ,]* ]] || fail "libvgpu0 does not depend on $p: Depends: $depends"
done
dpkg-deb --fsys-tarfile "$libvgpu_deb" | tar -xO --wildcards '*/libvgpu.so.0.*' >"$WORK/libvgpu.so" ||
        fail "no libvgpu.so.0.* in $libvgpu_deb"
if readelf -d "$WORK/libvgpu.so" | grep -E 'NEEDED.*\[(libpci|libyaml|libz)\.'; then
        fail "the packaged libvgpu.so NEEDs a library it should load on first use (above)"
fi

echo "== lintian"
changes=$(ls "$WORK"/vgpuctl_"$VERSION"_*.changes)
lintian --fail-on error --suppress-tags-from-file /dev/null "$changes" >"$WORK/lintian.log" 2>&1 ||
        { cat "$WORK/lintian.log"; fail "lintian reports errors"; }
grep -E '^[EWI]:' "$WORK/lintian.log" | sed 's/^/deb: lintian: /' || true

echo "== apt-get install ${debs[*]##*/}"
installed=1
"${APT[@]}" install --no-install-recommends "${debs[@]}" >"$WORK/install.log" 2>&1 ||
        { cat "$WORK/install.log"; fail "apt-get install failed"; }

# every file where meson's install put it, and where the programs and systemd look
for f in /usr/sbin/vgpuctl /usr/sbin/vgpud \
         /lib/systemd/system/vgpuctl-restore.service /lib/systemd/system/vgpud.service \
         /lib/udev/rules.d/90-vgpuctl.rules /usr/lib/tmpfiles.d/vgpud.conf \
         /usr/share/man/man8/vgpuctl.8.gz /usr/share/man/man8/vgpud.8.gz \
         /usr/share/man/man5/host.yaml.5.gz /usr/share/man/man5/vgpud.conf.5.gz \
         /usr/share/bash-completion/completions/vgpuctl /usr/share/zsh/site-functions/_vgpuctl \
         /usr/share/doc/vgpuctl/host.yaml /usr/share/doc/vgpuctl/vgpud.conf /usr/share/snmp/mibs/VGPU-MIB.txt \
         "/usr/lib/$MA/libvgpu.so.0" "/usr/lib/$MA/libvgpu.so" "/usr/lib/$MA/pkgconfig/vgpu.pc" \
         "/usr/lib/$MA/vgpuctl/libvgpu-cuda.so" /usr/include/vgpu/host.h \
         /usr/sbin/vgpu-broker /lib/systemd/system/vgpu-broker.service \
         /usr/share/vgpu-broker/dashboard/index.html /usr/share/vgpu-broker/dashboard/dashboard.js \
         /usr/share/vgpu-broker/dashboard/dashboard.css; do
        [[ -e $f ]] || fail "$f is not installed"
done
# the units run what the package installed
grep -q '^ExecStart=/usr/sbin/vgpud$' /lib/systemd/system/vgpud.service || fail "vgpud.service does not start /usr/sbin/vgpud"
grep -q '^ExecStart=/usr/sbin/vgpuctl apply --restore$' /lib/systemd/system/vgpuctl-restore.service ||
        fail "vgpuctl-restore.service does not run /usr/sbin/vgpuctl"
grep -q '^ExecStart=/usr/sbin/vgpu-broker ' /lib/systemd/system/vgpu-broker.service ||
        fail "vgpu-broker.service does not start /usr/sbin/vgpu-broker"
# both units enabled by the maintainer scripts (with or without a running systemd); the broker's
# not, as it needs its etcd endpoints first (debian/rules)
for u in vgpud.service vgpuctl-restore.service; do
        [[ -L /etc/systemd/system/multi-user.target.wants/$u ]] || fail "$u is not enabled"
done
[[ ! -e /etc/systemd/system/multi-user.target.wants/vgpu-broker.service ]] || fail "vgpu-broker.service is enabled"
if command -v systemd-analyze >/dev/null; then
        systemd-analyze verify /lib/systemd/system/vgpu-broker.service >"$WORK/verify.log" 2>&1 ||
                { cat "$WORK/verify.log"; fail "systemd-analyze verify vgpu-broker.service"; }
fi
# vgpud's tmpfiles.d entry applied by its postinst: the directories its unit's sandbox needs
if command -v systemd-tmpfiles >/dev/null; then
        for d in /run/vgpud /run/vgpuctl /var/lib/vgpuctl /var/cache/vgpuctl; do
                [[ -d $d ]] || fail "$d was not made at install (tmpfiles.d)"
        done
fi
# the CDI spec hands containers the shim where libvgpu-cuda put it
grep -q -a "/usr/lib/$MA/vgpuctl/libvgpu-cuda.so" "/usr/lib/$MA/libvgpu.so.0" || fail "libvgpu names another shim path"
# vgpuctl runs on the packaged library, not on a build tree's (/lib is /usr/lib, merged /usr)
lib=$(ldd /usr/sbin/vgpuctl | awk '$1 == "libvgpu.so.0" { print $3 }')
[[ -n $lib && $(readlink -f "$lib") == $(readlink -f "/usr/lib/$MA/libvgpu.so.0") ]] ||
        { ldd /usr/sbin/vgpuctl; fail "vgpuctl does not load the packaged libvgpu.so.0"; }

echo "== vgpuctl doctor (installed)"
rc=0; env -u VGPU_ROOT /usr/sbin/vgpuctl doctor >"$WORK/doctor.log" 2>&1 || rc=$?
# 0: healthy, 1: problems found (no GPU here); anything else is the program failing
[[ $rc -le 1 ]] || { cat "$WORK/doctor.log"; fail "vgpuctl doctor exited $rc"; }
rc=0; env -u VGPU_ROOT /usr/sbin/vgpuctl list --json >"$WORK/list.json" 2>&1 || rc=$?
[[ $rc -eq 0 ]] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/list.json" ||
        { cat "$WORK/list.json"; fail "vgpuctl list --json failed ($rc)"; }
/usr/sbin/vgpud --help >/dev/null || fail "vgpud --help failed"
man -l /usr/share/man/man8/vgpuctl.8.gz >/dev/null 2>&1 || fail "vgpuctl(8) does not render"

echo "== vgpu-broker (installed) on a real etcd: ready, serves its dashboard"
if command -v etcd >/dev/null; then
        port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
        ep=$(port) peer=$(port) api=$(port)
        etcd --name deb --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ep" \
                --advertise-client-urls "http://127.0.0.1:$ep" --listen-peer-urls "http://127.0.0.1:$peer" \
                --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "deb=http://127.0.0.1:$peer" \
                --listen-metrics-urls "http://127.0.0.1:$(port)" >"$WORK/etcd.log" 2>&1 &
        etcd_pid=$!
        /usr/sbin/vgpu-broker --etcd "http://127.0.0.1:$ep" --socket "$WORK/broker.sock" \
                --listen "127.0.0.1:$api" >"$WORK/broker.log" 2>&1 &
        broker_pid=$!
        ready=0
        for _ in $(seq 100); do
                curl -sf "http://127.0.0.1:$api/readyz" >/dev/null 2>&1 && { ready=1; break; }
                sleep 0.1
        done
        page=$(curl -sf "http://127.0.0.1:$api/" || true)
        js=$(curl -sf "http://127.0.0.1:$api/dashboard.js" | sha256sum || true)
        kill "$broker_pid" "$etcd_pid"; wait "$broker_pid" "$etcd_pid" 2>/dev/null || true
        broker_pid= etcd_pid=
        [[ $ready == 1 ]] || { cat "$WORK/broker.log" "$WORK/etcd.log" | tail -30; fail "the installed vgpu-broker was not ready"; }
        [[ $page == *"<title>vGPU fleet</title>"* ]] || { cat "$WORK/broker.log"; fail "the installed broker does not serve its dashboard"; }
        [[ $js == "$(sha256sum </usr/share/vgpu-broker/dashboard/dashboard.js)" ]] || fail "dashboard.js is not the installed file"
else
        echo "deb: note: no etcd here (etcd-server): the installed broker not started"
fi

echo "== a program built against libvgpu-dev"
cat >"$WORK/use.c" <<'C'
#include <stdio.h>
#include <vgpu/host.h>
int main(void) { printf("%s\n", vgpu_bdf_normalize ? "linked" : "missing"); return 0; }
C
# shellcheck disable=SC2046
cc -o "$WORK/use" "$WORK/use.c" $(pkg-config --cflags --libs vgpu) || fail "cannot build against vgpu.pc"
[[ $("$WORK/use") == linked ]] || fail "the program built against libvgpu does not run"
[[ $(pkg-config --modversion vgpu) == "${VERSION%%-*}" ]] || fail "vgpu.pc has another version"

# every file of the packages, for the purge check
for d in "${debs[@]}"; do dpkg-deb -c "$d"; done | awk '{print $6}' | sed 's|^\./|/|' |
        grep -v '/$' >"$WORK/files"

echo "== apt-get purge"
"${APT[@]}" purge "${PKGS[@]}" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "apt-get purge failed"; }
installed=0
for p in "${PKGS[@]}"; do
        ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -v not-installed || fail "$p is still known to dpkg"
done
left=()
while read -r f; do [[ -e $f || -L $f ]] && left+=("$f"); done <"$WORK/files"
for f in /etc/systemd/system/multi-user.target.wants/vgpud.service \
         /etc/systemd/system/multi-user.target.wants/vgpuctl-restore.service \
         /var/lib/systemd/deb-systemd-helper-enabled/vgpud.service.dsh-also \
         /var/lib/systemd/deb-systemd-helper-enabled/vgpuctl-restore.service.dsh-also \
         /var/lib/systemd/deb-systemd-helper-enabled/vgpu-broker.service.dsh-also /usr/share/vgpu-broker \
         /var/lib/vgpuctl /var/cache/vgpuctl /run/vgpud /run/vgpuctl /usr/share/doc/vgpuctl /usr/include/vgpu; do
        [[ -e $f || -L $f ]] && left+=("$f")
done
[[ ${#left[@]} -eq 0 ]] || fail "left after purge: ${left[*]}"
! pgrep -f "^/usr/sbin/vgpud" >/dev/null || fail "a vgpud still runs after purge"
! pgrep -f "^/usr/sbin/vgpu-broker" >/dev/null || fail "a vgpu-broker still runs after purge"

echo "deb: OK: ${#PKGS[@]} packages built, installed and purged"
