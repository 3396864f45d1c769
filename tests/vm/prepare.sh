#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fetches Debian's kernel and builds the sample mdev drivers (mtty, mdpy, mbochs) for the VM harness.
#
# Usage: prepare.sh [WORKDIR] (default: build/vm-lab at the top of the tree). Env VM_KERNEL_META
# picks the kernel metapackage (default linux-image-amd64). Nothing is installed system-wide.
# Produces:
#   WORKDIR/KV                     kernel release, e.g. 6.1.0-56-amd64
#   WORKDIR/kernel                 the kernel to boot (vmlinux when it can be unpacked, else bzImage)
#   WORKDIR/base.cpio.gz           busybox + the modules the guest loads (incl. mtty/mdpy/mbochs)
#   WORKDIR/READY                  "KV VERSION MODS-HASH" once all of the above is complete (the cache key)
set -euo pipefail
# a failing command under set -e says where, instead of ending the script without a word
trap 'echo "prepare.sh: line $LINENO: exit status $?" >&2' ERR
# (no `awk '{...; exit}'` or `| head` after a producer here: under pipefail its SIGPIPE ends the script)

W=${1:-$(dirname "$0")/../../build/vm-lab}
W=$(mkdir -p "$W" && cd "$W" && pwd)
META=${VM_KERNEL_META:-linux-image-amd64}
# in-tree modules the guest needs (their dependencies are resolved by modprobe below)
MODS="virtio_pci 9p 9pnet_virtio vfio vfio_iommu_type1 vfio-pci mdev nvme ipmi_si ipmi_devintf"

resolve() {
	IMG=$(apt-cache depends "$META" 2>/dev/null | awk '/Depends: linux-image-/ && !f {print $2; f = 1}')
	[ -n "$IMG" ] || return 1
	KV=${IMG#linux-image-}
	VER=$(apt-cache show "$IMG" | awk '/^Version:/ && !f {print $2; f = 1}')
}
if ! resolve && ! { apt-get update -q >/dev/null && resolve; }; then
	[ -f "$W/READY" ] && echo "vm-lab: apt cannot resolve $META; reusing $W ($(cat "$W/READY"))" && exit 0
	echo "prepare: cannot resolve $META" >&2 && exit 1
fi

# the cache key: the kernel, and the module list (a module added here rebuilds the base layer)
KEY="$KV $VER $(echo "$MODS" | md5sum | cut -c1-8)"
if [ "$(cat "$W/READY" 2>/dev/null)" = "$KEY" ]; then
	echo "vm-lab: reusing $W ($KV $VER)"
	exit 0
fi
echo "vm-lab: preparing $W for kernel $KV ($VER)"
KBUILD=$(apt-cache depends "linux-headers-$KV" | awk '/Depends: linux-kbuild-/ && !f {print $2; f = 1}')
SRC=linux-source-$(echo "$KV" | cut -d. -f1-2)
rm -f "$W/READY"
cd "$W"

# 1) download (keeps any .deb of the right version already there)
mkdir -p debs
want=()
for p in "$IMG" "linux-headers-$KV" "linux-headers-${KV%-amd64}-common" "$KBUILD" "$SRC"; do
	ls debs/"${p}_${VER/:/%3a}"_*.deb >/dev/null 2>&1 || want+=("$p=$VER")
done
if [ ${#want[@]} -gt 0 ]; then
	(cd debs && apt-get download -q "${want[@]}" 2>&1) | { grep -v '^Get:\|unsandboxed' || true; }
fi

# 2) unpack kernel, headers and kbuild; extract only samples/vfio-mdev from the source tarball
rm -rf root src mdev-build && mkdir -p root src
for p in "$IMG" "linux-headers-$KV" "linux-headers-${KV%-amd64}-common" "$KBUILD"; do
	dpkg -x debs/"${p}_${VER/:/%3a}"_*.deb root
done
# Debian's flavour headers Makefile includes the common one by absolute path: point it here
sed -i "s|^include /usr/src/|include $W/root/usr/src/|" "root/usr/src/linux-headers-$KV/Makefile"
dpkg-deb --fsys-tarfile debs/"${SRC}_${VER/:/%3a}"_*.deb | tar -xO "./usr/src/$SRC.tar.xz" |
	tar -xJ -C src --strip-components=1 "$SRC/samples/vfio-mdev"

# 3) build the sample drivers out of tree (unsigned, no BTF)
cp -r src/samples/vfio-mdev mdev-build
make -s -C "root/usr/src/linux-headers-$KV" M="$W/mdev-build" -j"$(nproc)" \
	CONFIG_SAMPLE_VFIO_MDEV_MTTY=m CONFIG_SAMPLE_VFIO_MDEV_MDPY=m CONFIG_SAMPLE_VFIO_MDEV_MBOCHS=m \
	CONFIG_DEBUG_INFO_BTF_MODULES= modules 2>&1 | { grep -v 'Skipping BTF' || true; }
ls mdev-build/{mtty,mdpy,mbochs}.ko >/dev/null

# 4) base initramfs layer: busybox and the modules (run.sh appends our binaries on top)
ST=$W/base.stage
rm -rf "$ST" && mkdir -p "$ST"/{bin,dev,proc,sys,tmp,run,etc,mnt/results,lib/modules/"$KV"/extra}
cp /bin/busybox "$ST/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ST/bin/$a"; done
depmod -b root "$KV"
for m in $MODS; do modprobe -d "$W/root" -S "$KV" --show-depends "$m"; done |
	awk '$1 == "insmod" {print $2}' | sort -u | while read -r f; do
	rel=${f#"$W/root/lib/modules/$KV/"}
	mkdir -p "$ST/lib/modules/$KV/$(dirname "$rel")" && cp "$f" "$ST/lib/modules/$KV/$rel"
done
find "$ST/lib/modules" -name '*.ko.xz' -exec xz -d {} +
cp mdev-build/{mtty,mdpy,mbochs}.ko "$ST/lib/modules/$KV/extra/"
cp root/lib/modules/"$KV"/modules.{order,builtin,builtin.modinfo} "$ST/lib/modules/$KV/"
depmod -b "$ST" "$KV"
(cd "$ST" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1) >base.cpio.gz
rm -rf "$ST"
# boot the uncompressed ELF through PVH: saves the ~3 s TCG spends in BIOS and the decompressor
Z=root/boot/vmlinuz-$KV
hdr() { od -An -t u"$2" -j "$1" -N "$2" "$Z" | tr -d ' '; }   # bzImage boot header fields
# (payload: xz data + 4 bytes of uncompressed size; other compressions keep the bzImage)
dd if="$Z" iflag=skip_bytes,count_bytes bs=1M status=none skip=$((($(hdr 497 1) + 1) * 512 + $(hdr 584 4))) \
	count=$(($(hdr 588 4) - 4)) | xz -dc >kernel 2>/dev/null || cp "$Z" kernel
echo "$KV" >KV
rm -rf debs src root        # ~700 MB only needed to build; the cache is the files listed above
echo "$KEY" >READY
echo "vm-lab: ready ($(du -sh base.cpio.gz | cut -f1) base initramfs)"
