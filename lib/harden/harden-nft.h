/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden-nft.h — harden.c's use of the live nftables ruleset through nft (harden-nft.c).
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
int harden_nft_live(const struct vgpu_harden_options *o, const uint16_t *ports, size_t n_ports, struct text *ev);
/* nft -f the host file; the outcome is a line in log. 0 or -EIO. */
int harden_nft_load(const char *host_path, struct text *log);
/* Make /etc/nftables.conf include include_path (append; create it when absent). 0 or -errno. */
int harden_nft_persist(const char *include_path, struct text *log);
