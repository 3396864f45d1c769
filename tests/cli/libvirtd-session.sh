#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# libvirtd-session.sh — a real libvirtd for the tests that talk to one (cli/assign-libvirtd.sh,
# fleet/vgpud-fleet-libvirtd.py): Debian's libvirtd with its QEMU driver, in session mode, as an
# unprivileged user (nobody when we are root: libvirtd as root is the system daemon, whose paths
# are the host's), with its runtime, config and cache directories under DIR. The host's system
# libvirtd (and its domains) are never touched. It ends by itself after --timeout 300 idle
# seconds should the test be killed.
#
# Sourced: `libvirtd_session_start DIR` returns 0 with LIBVIRTD_PID, LIBVIRTD_SOCKET, LIBVIRTD_URI
# (qemu+unix:///session?socket=..., which root reaches too), LIBVIRTD_QEMU, and the arrays
# libvirtd_as (the command prefix that runs as the daemon's user, empty when not root) and
# libvirtd_env (its XDG environment) set; or 77 with the reason in LIBVIRTD_SKIP.
# Executed: `libvirtd-session.sh DIR` starts it the same way and prints KEY=VALUE lines (PID,
# SOCKET, URI, QEMU, USER), or "SKIP: reason" and exits 77 (for tests in other languages).

libvirtd_session_start() {
        local dir=$1
        LIBVIRTD_SKIP=
        local libvirtd
        libvirtd=$(command -v libvirtd || { [[ -x /usr/sbin/libvirtd ]] && echo /usr/sbin/libvirtd; })
        [[ -n $libvirtd ]] || {
                LIBVIRTD_SKIP="libvirtd not installed (Debian: libvirt-daemon, libvirt-daemon-driver-qemu; scripts/install-deps.sh --test)"
                return 77
        }
        ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 || {
                LIBVIRTD_SKIP="libvirt's QEMU driver not installed (Debian: libvirt-daemon-driver-qemu)"
                return 77
        }
        LIBVIRTD_QEMU=$(command -v qemu-system-x86_64) || {
                LIBVIRTD_SKIP="qemu-system-x86_64 not installed (Debian: qemu-system-x86)"
                return 77
        }
        command -v virsh >/dev/null || {
                LIBVIRTD_SKIP="virsh not installed (Debian: libvirt-clients)"
                return 77
        }
        libvirtd_as=()
        if [[ $(id -u) == 0 ]]; then
                command -v setpriv >/dev/null || {
                        LIBVIRTD_SKIP="setpriv not installed (util-linux), needed to run libvirtd unprivileged"
                        return 77
                }
                id nobody >/dev/null 2>&1 || {
                        LIBVIRTD_SKIP="no user 'nobody' to run a session libvirtd as"
                        return 77
                }
                libvirtd_as=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
                chmod 755 "$dir" # nobody must reach its directories (and the test's files there)
        fi
        mkdir -p "$dir/run" "$dir/config" "$dir/cache" "$dir/home"
        [[ ${#libvirtd_as[@]} -gt 0 ]] && chown -R nobody "$dir/run" "$dir/config" "$dir/cache" "$dir/home"
        libvirtd_env=(env HOME="$dir/home" XDG_RUNTIME_DIR="$dir/run" XDG_CONFIG_HOME="$dir/config"
                      XDG_CACHE_HOME="$dir/cache" LIBVIRT_DEFAULT_URI=qemu:///session)
        # exec: $! is then libvirtd itself (setpriv and env exec too), which the caller stops
        (exec "${libvirtd_as[@]}" "${libvirtd_env[@]}" "$libvirtd" --timeout 300 </dev/null >"$dir/libvirtd.log" 2>&1) &
        LIBVIRTD_PID=$!
        LIBVIRTD_SOCKET=$dir/run/libvirt/libvirt-sock
        local _
        for _ in $(seq 300); do
                [[ -S $LIBVIRTD_SOCKET ]] && break
                kill -0 "$LIBVIRTD_PID" 2>/dev/null || break
                sleep 0.1
        done
        if ! [[ -S $LIBVIRTD_SOCKET ]]; then
                kill "$LIBVIRTD_PID" 2>/dev/null
                LIBVIRTD_SKIP="libvirtd did not start in session mode: $(tail -n 3 "$dir/libvirtd.log" | tr '\n' ' ')"
                return 77
        fi
        LIBVIRTD_URI="qemu+unix:///session?socket=$LIBVIRTD_SOCKET"
        return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
        [[ $# == 1 && -d $1 ]] || {
                echo "usage: $0 DIR (an existing directory for the daemon's files)" >&2
                exit 2
        }
        if ! libvirtd_session_start "$1"; then
                echo "SKIP: $LIBVIRTD_SKIP"
                exit 77
        fi
        echo "PID=$LIBVIRTD_PID"
        echo "SOCKET=$LIBVIRTD_SOCKET"
        echo "URI=$LIBVIRTD_URI"
        echo "QEMU=$LIBVIRTD_QEMU"
        if [[ ${#libvirtd_as[@]} -gt 0 ]]; then echo USER=nobody; else echo "USER=$(id -un)"; fi
fi
