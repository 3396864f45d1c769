#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the Debian packages the real-kernel VM harness needs (no-op when all are present).
set -euo pipefail

# qemu-system-x86 and busybox-static run the guest; cpio, gzip and kmod build its initramfs;
# gcc, make and libelf1 (objtool) build the sample mdev drivers; xz-utils unpacks kernel and source.
# mdevctl goes into the guest to show it reads the definitions vgpuctl writes; udev's
# systemd-udevd runs our rules file there on the kernel's own uevents (50-udev).
PKGS=(qemu-system-x86 busybox-static cpio gzip kmod gcc make libelf1 xz-utils mdevctl udev)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "vm deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
