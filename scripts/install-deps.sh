#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# install-deps.sh — installs with apt-get the Debian 12 packages the build and tests need,
# and nothing when they are all present already (so `make run` twice costs nothing).
#   scripts/install-deps.sh           build + runtime
#   scripts/install-deps.sh --test    + what the test suites need
set -euo pipefail

# libvirt-dev and libxml2-dev: headers only (lib/assign loads libvirt.so.0 at run time)
pkgs=(meson ninja-build gcc pkg-config libc6-dev libpci-dev pciutils pci.ids python3 zlib1g-dev libjson-c-dev libyaml-dev
      libvirt-dev libxml2-dev libsystemd-dev libkmod-dev libmicrohttpd-dev libinih-dev)
# host sensors (lib/telemetry): hwmon through libsensors, the BMC through FreeIPMI
pkgs+=(libsensors-dev libipmimonitoring-dev libfreeipmi-dev)
# libcurl: headers only; vgpuctl loads libcurl.so.4 (libcurl4) when it talks to vgpud
pkgs+=(libcurl4-openssl-dev libcurl4)
# net-snmp's agent library: vgpud as an AgentX subagent ([snmp]; optional at build)
pkgs+=(libsnmp-dev)
# liburing: the host scan batches its sysfs reads through io_uring (plain reads where it is denied)
pkgs+=(liburing-dev)
if [[ "${1:-}" == "--test" ]]; then
        # libvirt-clients: virt-xml-validate (with libxml2-utils' xmllint) checks our <hostdev> XML
        # nftables: `nft -c` checks the ruleset `vgpuctl harden` generates
        # prometheus: promtool checks vgpud's /metrics (installs in ~7 s); the client library's parser too
        # freeipmi-tools: ipmi-sel / ipmi-raw, to look at a BMC by hand next to the IPMI collector
        pkgs+=(freeipmi-tools)
        # podman (with runc beside crun) runs slices' CDI devices in real containers; busybox-static
        # and debootstrap (a Debian 11 rootfs, cached in the build directory) make their images;
        # binutils' objdump checks the shim's glibc symbol versions
        pkgs+=(podman runc busybox-static debootstrap binutils)
        # bash-completion, zsh: the completion scripts run in the shells; groff-base, man-db: the
        # man pages render without warnings (groff -ww, man -l)
        pkgs+=(bash-completion zsh groff-base man-db)
        # libvirt-daemon + its QEMU driver + qemu-system-x86: a real libvirtd for assign/detach
        # (tests/cli/assign-libvirtd.sh, tests/fleet/vgpud-fleet-libvirtd.py, both through
        # tests/cli/libvirtd-session.sh; not libvirt-daemon-system, which would start the host's)
        pkgs+=(libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86)
        # systemd-journal-remote: writes real .journal files for the doctor's journal readers
        pkgs+=(systemd-journal-remote)
        # snmpd, snmptrapd, snmp (snmpwalk): the master, the trap receiver and the walker around
        # vgpud's subagent; smitools: smilint checks VGPU-MIB (tests/daemon/snmp.py)
        pkgs+=(snmpd snmptrapd snmp smitools)
        # debhelper, dpkg-dev, fakeroot, lintian: tests/packaging/deb.sh builds and lints the Debian
        # packages; ansible-core, ansible-lint: tests/ansible/run.sh runs the collection
        pkgs+=(debhelper dpkg-dev fakeroot lintian git ansible-core ansible-lint)
        # clang-format: tests/style/clang-format.sh keeps the tree in .clang-format's style
        pkgs+=(clang-format)
        # etcd-server, etcd-client: the fleet tests start real etcd members (etcdctl to look at them);
        # openssl makes the CA and certificates of the etcd client's TLS test
        pkgs+=(etcd-server etcd-client openssl)
        # chromium, chromium-driver, python3-selenium: tests/fleet/dashboard.py loads the fleet
        # dashboard in a real headless browser and drives it
        pkgs+=(chromium chromium-driver python3-selenium)
        pkgs+=(libcmocka-dev nftables mdevctl python3-jsonschema python3-yaml libvirt-clients libxml2-utils prometheus python3-prometheus-client)
fi

missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=
if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
