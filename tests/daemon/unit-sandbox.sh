#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# unit-sandbox.sh — runs a command under the file-system sandbox a systemd unit file asks for,
# applied below a fixture root (VGPU_ROOT), in a private mount namespace.
#
# Usage: unit-sandbox.sh UNIT ROOT COMMAND [ARG...]
#
# Why below ROOT and not at /: every host path libvgpu opens goes through VGPU_ROOT
# (lib/basic/root.c), so a daemon started with VGPU_ROOT=ROOT writes ROOT/etc/cdi where the
# installed one writes /etc/cdi. Making ROOT's tree exactly as writable as the unit makes / is
# therefore what the installed daemon meets, path for path, without a systemd PID 1 (this
# sandbox has none) and without touching the real /etc. What it applies, read from UNIT (the
# last assignment wins; list settings add up and an empty assignment clears them, as in systemd):
#   ProtectSystem=strict: all of ROOT read-only except ROOT/dev, ROOT/proc, ROOT/sys (systemd's
#     API file systems); =full: ROOT/usr, /boot, /efi, /etc; =yes: ROOT/usr, /boot, /efi
#   ReadWritePaths= / ReadOnlyPaths= / InaccessiblePaths= (a leading "-": may be absent; a path
#     without it that does not exist fails, as the unit's start would, with status 226)
#   ProtectHome=yes|read-only|tmpfs, ProtectKernelModules=yes (ROOT/lib/modules and
#   ROOT/usr/lib/modules empty), ProtectKernelTunables=yes (ROOT/sys, ROOT/proc/sys read-only),
#   ProtectControlGroups=yes, ProtectKernelLogs=yes (ROOT/dev/kmsg, ROOT/proc/kmsg), PrivateTmp=yes
# "Inaccessible" is an empty read-only directory, as systemd's is for a process with
# CAP_DAC_OVERRIDE (vgpud keeps it). Mounts are made parents first, so that a ReadWritePaths
# entry below a read-only tree is writable again, as in systemd's namespace setup.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 UNIT ROOT COMMAND [ARG...]" >&2 && exit 2; }
unit=$1 root=$(cd "$2" && pwd)
if [ -z "${UNIT_SANDBOX_INSIDE:-}" ]; then
	UNIT_SANDBOX_INSIDE=1 exec unshare --mount --propagation private "$0" "$@"
fi
shift 2
unset UNIT_SANDBOX_INSIDE

# the value of a single-valued setting (last one wins), and the words of a list setting
single() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$unit" | tail -n 1; }
list() {
	local v words=()
	while IFS= read -r v; do
		if [ -z "$v" ]; then words=(); else read -ra w <<<"$v" && words+=("${w[@]}"); fi
	done < <(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$unit")
	echo "${words[@]}"
}
yes() { case $(single "$1") in yes | true | on | 1) return 0 ;; *) return 1 ;; esac; }

# the mount table to build: "PATH MODE" with MODE ro, rw, empty (inaccessible) or tmpfs;
# PATH with a leading "-" may be absent
plan=()
case $(single ProtectSystem) in
strict) plan+=("/ ro" "-/dev rw" "-/proc rw" "-/sys rw") ;;
full) plan+=("-/usr ro" "-/boot ro" "-/efi ro" "-/etc ro") ;;
yes | true | on | 1) plan+=("-/usr ro" "-/boot ro" "-/efi ro") ;;
esac
case $(single ProtectHome) in
yes | true | on | 1) plan+=("-/home empty" "-/root empty" "-/run/user empty") ;;
read-only) plan+=("-/home ro" "-/root ro" "-/run/user ro") ;;
tmpfs) plan+=("-/home tmpfs" "-/root tmpfs" "-/run/user tmpfs") ;;
esac
yes ProtectKernelTunables && plan+=("-/sys ro" "-/proc/sys ro")
yes ProtectControlGroups && plan+=("-/sys/fs/cgroup ro")
yes ProtectKernelModules && plan+=("-/lib/modules empty" "-/usr/lib/modules empty")
yes ProtectKernelLogs && plan+=("-/dev/kmsg empty" "-/proc/kmsg empty")
yes PrivateTmp && plan+=("-/tmp tmpfs" "-/var/tmp tmpfs")
for p in $(list ReadOnlyPaths); do plan+=("$p ro"); done
for p in $(list InaccessiblePaths); do plan+=("$p empty"); done
for p in $(list ReadWritePaths); do plan+=("$p rw"); done

# parents before children; for one path the later entry wins (ReadWritePaths were added last)
mounted=()
while read -r p mode; do
	optional=0
	case $p in -*) optional=1 p=${p#-} ;; esac
	p=${p#+}
	t=$root${p%/}
	if [ ! -e "$t" ] && [ ! -L "$t" ]; then
		[ $optional = 1 ] && continue
		echo "unit-sandbox: $p (from $unit) does not exist below $root: the unit would fail (226/NAMESPACE)" >&2
		exit 226
	fi
	case $mode in
	ro | rw) mount --bind "$t" "$t" && mount -o "remount,bind,$mode" "$t" ;;
	tmpfs) mount -t tmpfs -o mode=1777 tmpfs "$t" ;;
	empty)
		if [ -d "$t" ]; then mount -t tmpfs -o ro,mode=000 tmpfs "$t"; else mount --bind /dev/null "$t"; fi ;;
	esac
	mounted+=("$p:$mode")
done < <(for i in "${!plan[@]}"; do
	read -r p mode <<<"${plan[$i]}"
	q=${p#-}
	# sort key: depth-first path order, then the entry's position (later wins)
	printf '%s\t%05d\t%s %s\n' "${q%/}/" "$i" "$p" "$mode"
done | LC_ALL=C sort -t $'\t' -k1,1 -k2,2n | cut -f3)
[ -z "${UNIT_SANDBOX_VERBOSE:-}" ] || echo "unit-sandbox: ${mounted[*]}" >&2
exec "$@"
