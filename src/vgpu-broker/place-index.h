/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * place-index.h — the broker's placement index (place-index.c): per vGPU type, each GPU's
 * utilization after one more instance of it, kept current from the watch, so a plain request
 * ("type": T, spread, a near-equal band) draws among the near-equal GPUs without evaluating every
 * GPU of the fleet. The choice is the one vgpu_fleet_place() makes over the full view (the same
 * tied set, the same seeded pick, in the same order): tests/fleet/test-place-index.c checks it on
 * random fleets. Private to the broker; nothing of it is in an installed header.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/fleet.h"

#define PINDEX_NO_FIT UINT8_MAX /* the GPU cannot take the type (any filter) */

/* The candidate at a slot as placement would see it with no request-specific filter (no
 * hold, no exclusion); ret->gpu NULL when the slot holds nothing placeable. */
typedef void (*pindex_candidate_fn)(size_t slot, struct vgpu_fleet_candidate *ret, void *userdata);

struct pindex_type {
        char *name;
        uint8_t *pct;      /* per slot: utilization after placement in percent (0..100), or PINDEX_NO_FIT */
        size_t count[101]; /* slots per percent */
        bool built, unusable; /* unusable: a value placement ranks outside 0..100 (then: full scan) */
};

struct pindex {
        pindex_candidate_fn candidate;
        void *userdata;
        size_t n_slots; /* as of the last rebuild; the caller invalidates when slots are added or moved */
        uint64_t *share_key; /* per slot: the hash whose remainder picks the GPU's share */
        struct pindex_type *types;
        size_t n_types;
        bool stale;
};

void pindex_init(struct pindex *x, pindex_candidate_fn candidate, void *userdata);
void pindex_done(struct pindex *x);
/* Slots were added, removed or moved, or something many GPUs depend on changed (a host, a
 * cordon): everything is recomputed on the next choice. */
void pindex_invalidate(struct pindex *x);
/* One slot's GPU or allocation changed (the same slot, the same GPU). */
void pindex_update(struct pindex *x, size_t slot);

/* The first min(max, tied) fits vgpu_fleet_place() returns for a request of type `type` with
 * this policy and key when no request-specific filter applies (no models, preferences, quota,
 * holds or exclusions; spread; near_percent > 0): their slots in *ret_slots, how many in *ret_n,
 * the size of the tied set in *ret_tied. n_slots: the slots there are now. -ENOENT when no GPU
 * fits (the full scan says why), -ERANGE when this index cannot rank the type, -ENOMEM. */
int pindex_choose(struct pindex *x, size_t n_slots, const char *type, const struct vgpu_fleet_policy *policy,
                  const char *key, size_t max, size_t *ret_slots, size_t *ret_n, size_t *ret_tied);

/* What the index holds for slot's GPU and type (after a pindex_choose() of that type):
 * the percent, PINDEX_NO_FIT, or -ENOENT when it holds nothing for them. */
int pindex_percent(const struct pindex *x, const char *type, size_t slot);

/* The percent vgpu_fleet_place() ranks candidate c by for one instance of type, PINDEX_NO_FIT
 * when it rejects it, or -ERANGE outside 0..100. */
int pindex_fit_percent(const struct vgpu_fleet_candidate *c, const char *type);
