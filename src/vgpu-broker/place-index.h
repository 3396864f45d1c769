/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * place-index.h — the broker's placement index (place-index.c): per class of request (a vGPU
 * type; a VRAM size, with or without a domain; a slice's memory and share), each GPU's
 * utilization after placing one such request, kept current from the watch, so a plain request
 * (spread, a near-equal band) draws among the near-equal GPUs without evaluating every GPU of
 * the fleet. The choice is the one vgpu_fleet_place() makes over the full view (the same tied
 * set, the same seeded pick, in the same order): tests/fleet/test-place-index.c checks it on
 * random fleets. Private to the broker; nothing of it is in an installed header.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/fleet.h"

#define PINDEX_NO_FIT      UINT8_MAX /* the GPU cannot take the request (any filter) */
#define PINDEX_MAX_CLASSES 16        /* the least recently used class makes room for a new one */

/* The candidate at a slot as placement would see it with no request-specific filter (no
 * hold, no exclusion); ret->gpu NULL when the slot holds nothing placeable. */
typedef void (*pindex_candidate_fn)(size_t slot, struct vgpu_fleet_candidate *ret, void *userdata);

/* What of a request decides each GPU's fit and rank (the rest: the draw, or not indexed). */
struct pindex_class {
        enum vgpu_fleet_kind kind;
        char *type; /* kind vgpu */
        uint64_t vram_bytes, slice_memory_bytes;
        unsigned slice_share_percent;
        bool domain;       /* a domain is named: no slice */
        uint8_t *pct;      /* per slot: utilization after placement in percent (0..100), or PINDEX_NO_FIT */
        size_t count[101]; /* slots per percent */
        uint64_t used;     /* when last chosen from (LRU) */
        bool built, unusable; /* unusable: a value placement ranks outside 0..100 (then: full scan) */
};

struct pindex {
        pindex_candidate_fn candidate;
        void *userdata;
        size_t n_slots, slots_size; /* slots indexed, and room for */
        uint64_t *share_key;        /* per slot: the hash whose remainder picks the GPU's share */
        struct pindex_class *classes;
        size_t n_classes;
        uint64_t clock;
        bool stale;
};

void pindex_init(struct pindex *x, pindex_candidate_fn candidate, void *userdata);
void pindex_done(struct pindex *x);
/* Start again: everything is recomputed on the next choice (a relist). */
void pindex_invalidate(struct pindex *x);
/* Whether the index is kept current now (not to be rebuilt anyway): worth updating slots for. */
bool pindex_live(const struct pindex *x);
/* One slot's GPU or what it depends on changed (its allocation, host, cordon). */
void pindex_update(struct pindex *x, size_t slot);
/* A slot appended (a new GPU, at index n_slots); the last slot moved into slot (its GPU gone). */
void pindex_add_slot(struct pindex *x);
void pindex_remove_slot(struct pindex *x, size_t slot);

/* Whether the index can decide rq under policy: spread with near_percent > 0, a valid request
 * without models or preferences (the caller checks quota, holds and exclusions). */
bool pindex_applies(const struct vgpu_fleet_request *rq, const struct vgpu_fleet_policy *policy);

/* The first min(max, tied) fits vgpu_fleet_place() returns for rq with this policy when no
 * request-specific filter applies (pindex_applies(); no quota, holds or exclusions): their slots
 * in *ret_slots, how many in *ret_n, the size of the tied set in *ret_tied. n_slots: the slots
 * there are now. -ENOENT when no GPU fits (the full scan says why), -ERANGE when this index
 * cannot rank the request, -ENOMEM. */
int pindex_choose(struct pindex *x, size_t n_slots, const struct vgpu_fleet_request *rq,
                  const struct vgpu_fleet_policy *policy, size_t max, size_t *ret_slots, size_t *ret_n,
                  size_t *ret_tied);

/* What the index holds for slot's GPU and rq's class (after a pindex_choose() of it): the
 * percent, PINDEX_NO_FIT, or -ENOENT when it holds nothing for them. */
int pindex_percent(const struct pindex *x, const struct vgpu_fleet_request *rq, size_t slot);

/* A fit's utilization after placement in placement.c's rank steps (whole percent, as
 * lib/fleet/placement.c rounds it): what the index stores and what its picks are checked by. */
static inline long pindex_util_percent(double utilization_after) {
        return (long) (utilization_after * 100.0 + 1e-9);
}

/* The percent vgpu_fleet_place() ranks candidate c by for rq alone, PINDEX_NO_FIT when it
 * rejects it, or -ERANGE outside 0..100. */
int pindex_fit_percent(const struct vgpu_fleet_candidate *c, const struct vgpu_fleet_request *rq);
