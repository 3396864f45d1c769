/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden-internal.h — what harden.c uses from its neighbours: the live nftables ruleset through
 * nft (harden-nft.c) and the files that keep device node modes across reboots (harden-persist.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "doctor/doctor-internal.h"
#include "vgpu/harden.h"

/* nftables.service loads this at boot; --apply includes our file from it (under VGPU_ROOT) */
#define VGPU_HARDEN_NFT_CONF "/etc/nftables.conf"

/* Does the kernel's ruleset drop each port (TCP and UDP) on each public interface? 1: all,
 * 0: some open (listed in ev), -ENODATA: nft missing or refused (said in ev), -ENOMEM. */
int harden_nft_live(const struct vgpu_harden_options *o, const uint16_t *ports, size_t n_ports,
                    struct text *ev);
/* nft -f the host file; the outcome is a line in log. 0 or -EIO. */
int harden_nft_load(const char *host_path, struct text *log);
/* Make /etc/nftables.conf include include_path (append; create it when absent). 0 or -errno. */
int harden_nft_persist(const char *include_path, struct text *log);

/* Where --apply keeps the device nodes' modes (under VGPU_ROOT): udev makes /dev/vfio/N and
 * the DRM nodes anew at every boot and hotplug; NVIDIA's driver makes its /dev nodes itself, with
 * the mode and group of its module options. */
#define VGPU_HARDEN_UDEV_RULES    "/etc/udev/rules.d/70-vgpuctl-harden.rules"
#define VGPU_HARDEN_MODPROBE_CONF "/etc/modprobe.d/vgpuctl-harden.conf"

/* Write the udev rule (VFIO group nodes root:vfio_group 0660 when vfio_group; DRM nodes o-rwx
 * when gpu) and, when gpu and /dev/nvidiactl exists, NVIDIA's module options (0660, its group
 * now). Outcomes are lines in log; 0, or -ENOMEM. */
int harden_persist_devices(const char *vfio_group, bool gpu, struct text *log);

#define IF_NAME_BUF 16 /* IFNAMSIZ */

/* The interfaces with a default route (IPv4 or IPv6; not lo), NULL-terminated, maybe none:
 * the public interfaces proposed when --public-if names none. 0 or -ENOMEM. */
int harden_propose_ifaces(char ***ret, size_t *ret_n);
void harden_ifaces_free(char **list);
