/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shares.h — how brokers placing at once split the near-equal (tied) GPUs between them: each
 * GPU's key is FNV-1a of its id through splitmix64; the tied GPUs ordered by key are cut into
 * n_shares runs of equal size (sizes differ by at most one), and a broker draws from its run.
 * Equal runs of the tied, not the key modulo n_shares: with the remainder, 200 GPUs split
 * 61/54/46/39 between four brokers, and a broker whose part of the tied ran out first (the
 * band moves up as GPUs fill) drew from all of them, where its claims collided with the
 * others' (bench/fleet.sh: 0.04 conflicts per placement, most of them such draws). Cut
 * equally, each broker has a quarter of the tied GPUs whatever the band holds.
 * lib/fleet/placement.c and the broker's index (src/vgpu-broker/place-index.c) both take it
 * from here, so they cut alike.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "basic/hash-util.h"

static inline uint64_t fleet_share_key(const char *gpu) {
        uint64_t h = fnv1a(gpu);
        return splitmix64(&h);
}

static inline void fleet_share_swap(uint64_t *a, size_t i, size_t j) {
        uint64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
}

/* a[k] becomes the key that sorting a[lo..hi) would put there, smaller keys before it and larger
 * after (quickselect, median of three, three-way partition): linear, where sorting the tied GPUs
 * of a big fleet for every placement was not */
static inline void fleet_share_select(uint64_t *a, size_t lo, size_t hi, size_t k) {
        while (hi - lo > 1) {
                uint64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
                uint64_t pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
                size_t lt = lo, i = lo, gt = hi;
                while (i < gt)
                        if (a[i] < pivot)
                                fleet_share_swap(a, lt++, i++);
                        else if (a[i] > pivot)
                                fleet_share_swap(a, i, --gt);
                        else
                                i++;
                if (k < lt)
                        hi = lt;
                else if (k >= gt)
                        lo = gt;
                else
                        return;
        }
}

/* The n_shares - 1 cuts between the runs of n keys (reordered in place): bounds[k - 1] is the
 * largest of the ceil(k * n / n_shares) smallest keys. n > 0, n_shares > 1. */
static inline void fleet_share_bounds(uint64_t *keys, size_t n, unsigned n_shares, uint64_t *bounds) {
        size_t done = 0; /* keys[0 .. done) are the smallest, in no order, keys[done - 1] largest of them */
        for (unsigned k = 1; k < n_shares; k++) {
                size_t cut = (k * n + n_shares - 1) / n_shares; /* >= 1 */
                if (cut > done) {
                        fleet_share_select(keys, done, n, cut - 1);
                        done = cut;
                }
                bounds[k - 1] = keys[cut - 1];
        }
}

/* The run of key: how many cuts lie below it (0 .. n_shares - 1). Equal keys share a run. */
static inline unsigned fleet_share_of(uint64_t key, const uint64_t *bounds, unsigned n_shares) {
        unsigned lo = 0, hi = n_shares - 1; /* the first cut not below key, by bisection */
        while (lo < hi) {
                unsigned mid = (lo + hi) / 2;
                if (bounds[mid] < key)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}
