/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden.h — audit (and optionally fix) who may change the GPU carve-up: mdev create/remove
 * and sriov_numvfs root-only, /dev/vfio/N root:kvm 0660, the daemon socket root:vgpu 0660, and
 * an nftables ruleset closing the VDI management ports on public interfaces.
 *
 * Findings reuse doctor's result model (vgpu/doctor.h): stable ids ("harden.vfio_devices"),
 * a status, evidence naming the paths, modes and owners seen, and a remedy. Free the report
 * with vgpu_doctor_report_free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/doctor.h"
#include "vgpu/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where --apply writes the ruleset (under VGPU_ROOT), loads it from (nft -f) and includes it
 * from /etc/nftables.conf. The audit reads the kernel's live ruleset (nft -j list ruleset). */
#define VGPU_HARDEN_NFT_PATH "/etc/nftables.d/vgpuctl.nft"
/* vgpud's local API socket (its default listen), a host path under VGPU_ROOT: audited here,
 * and where vgpuctl looks for the daemon. */
#define VGPU_DAEMON_SOCKET   "/run/vgpud/vgpud.sock"

struct vgpu_harden_options {
        const char *const *public_ifaces; /* interface names marked public; may be empty */
        size_t n_public_ifaces;
        const uint16_t *ports; /* NULL: 443, 4172, 8443 */
        size_t n_ports;
        const char *vfio_group;   /* name or numeric gid; NULL: "kvm" */
        const char *socket_group; /* name or numeric gid; NULL: "vgpu" */
};

/* Audit the host; one result per check, in the order of vgpu_harden_check_ids(). */
int vgpu_harden_audit(const struct vgpu_harden_options *opts, struct vgpu_doctor_report **ret,
                      struct vgpu_error *err);

/* Fix what can be fixed (modes and owners; write the ruleset to VGPU_HARDEN_NFT_PATH, load it
 * with nft -f and include it from /etc/nftables.conf when public interfaces are named). *ret_changes (may be NULL) gets one "\n"-separated line per
 * change made or attempted ("" when none); free() it. Individual failures are listed there and
 * left for the re-audit to report; only bad options or allocation failures return < 0. */
int vgpu_harden_apply(const struct vgpu_harden_options *opts, char **ret_changes, struct vgpu_error *err);

/* The nftables ruleset for opts (table inet vgpuctl); -EINVAL when no public interface is named
 * or a name or port is invalid. free() it. */
int vgpu_harden_ruleset(const struct vgpu_harden_options *opts, char **ret, struct vgpu_error *err);

/* The ids of all hardening checks, in order, NULL-terminated. */
const char *const *vgpu_harden_check_ids(void);

#ifdef __cplusplus
}
#endif
