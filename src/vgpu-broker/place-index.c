/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * place-index.c — the broker's placement index (place-index.h). At 1,000 hosts x 8 GPUs a full
 * placement evaluated 8,000 GPUs (their types, allocations, hosts: a dozen cache lines each), and
 * with the near-equal band nearly all of them are tied, so no "best bucket" can be taken alone:
 * the draw is the k-th tied GPU in the fleet's order, k from the request's key. So the index keeps,
 * per requested type, one byte per GPU (its rank, the utilization after placement in percent) and
 * a count per percent: a choice reads the counts for the lowest percent and the band, then one
 * pass over the bytes (8 KB for 8,000 GPUs) for the tied GPUs in order. Each GPU's percent comes
 * from vgpu_fleet_place() itself on that one GPU, so the index cannot rank differently from it.
 *
 * The draw mirrors lib/fleet/placement.c: the share of a GPU is FNV-1a of its id through
 * splitmix64 modulo the placers; the pick is splitmix64 of FNV-1a(key) ^ seed modulo the pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "place-index.h"

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (; s && *s; s++)
                h = (h ^ (unsigned char) *s) * UINT64_C(0x100000001b3);
        return h;
}

void pindex_init(struct pindex *x, pindex_candidate_fn candidate, void *userdata) {
        *x = (struct pindex){ .candidate = candidate, .userdata = userdata, .stale = true };
}

void pindex_done(struct pindex *x) {
        for (size_t i = 0; i < x->n_types; i++) {
                free(x->types[i].name);
                free(x->types[i].pct);
        }
        free(x->types);
        free(x->share_key);
        *x = (struct pindex){};
}

void pindex_invalidate(struct pindex *x) {
        x->stale = true;
}

int pindex_fit_percent(const struct vgpu_fleet_candidate *c, const char *type) {
        if (!c->gpu)
                return PINDEX_NO_FIT;
        struct vgpu_fleet_request rq = { .kind = VGPU_FLEET_KIND_VGPU, .type = type };
        struct vgpu_fleet_policy pol = { .policy = VGPU_FLEET_SPREAD };
        struct vgpu_fleet_placement p = {};
        struct vgpu_error err = {};
        if (vgpu_fleet_place(c, 1, &rq, &pol, NULL, &p, &err) < 0)
                return -ERANGE;
        int r = PINDEX_NO_FIT;
        if (p.n_fits > 0) {
                /* placement.c's rank: utilization after placement in 1 % steps */
                long u = (long) (p.fits[0].utilization_after * 100.0 + 1e-9);
                r = u < 0 || u > 100 ? -ERANGE : (int) u;
        }
        vgpu_fleet_placement_free(&p);
        return r;
}

static void type_set(struct pindex_type *t, size_t slot, int pct) {
        if (t->pct[slot] != PINDEX_NO_FIT)
                t->count[t->pct[slot]]--;
        if (pct < 0) {
                t->unusable = true;
                pct = PINDEX_NO_FIT;
        }
        t->pct[slot] = (uint8_t) pct;
        if (pct != PINDEX_NO_FIT)
                t->count[pct]++;
}

static void slot_share_key(struct pindex *x, size_t slot, const struct vgpu_fleet_candidate *c) {
        uint64_t h = fnv1a(c->gpu ? c->gpu->gpu : NULL);
        x->share_key[slot] = splitmix64(&h);
}

void pindex_update(struct pindex *x, size_t slot) {
        if (x->stale || slot >= x->n_slots)
                return;
        struct vgpu_fleet_candidate c = {};
        x->candidate(slot, &c, x->userdata);
        slot_share_key(x, slot, &c);
        for (size_t i = 0; i < x->n_types; i++)
                if (x->types[i].built)
                        type_set(&x->types[i], slot, pindex_fit_percent(&c, x->types[i].name));
}

/* Every slot again: the share keys now, the types when next asked. */
static int rebuild(struct pindex *x, size_t n_slots) {
        uint64_t *k = realloc(x->share_key, (n_slots ? n_slots : 1) * sizeof(*k));
        if (!k)
                return -ENOMEM;
        x->share_key = k;
        for (size_t i = 0; i < x->n_types; i++) {
                uint8_t *p = realloc(x->types[i].pct, n_slots ? n_slots : 1);
                if (!p)
                        return -ENOMEM;
                x->types[i].pct = p;
                x->types[i].built = false;
        }
        x->n_slots = n_slots;
        for (size_t s = 0; s < n_slots; s++) {
                struct vgpu_fleet_candidate c = {};
                x->candidate(s, &c, x->userdata);
                slot_share_key(x, s, &c);
        }
        x->stale = false;
        return 0;
}

static int type_build(struct pindex *x, struct pindex_type *t) {
        memset(t->count, 0, sizeof(t->count));
        memset(t->pct, PINDEX_NO_FIT, x->n_slots);
        t->unusable = false;
        for (size_t s = 0; s < x->n_slots; s++) {
                struct vgpu_fleet_candidate c = {};
                x->candidate(s, &c, x->userdata);
                type_set(t, s, pindex_fit_percent(&c, t->name));
        }
        t->built = true;
        return 0;
}

static int type_get(struct pindex *x, const char *name, struct pindex_type **ret) {
        for (size_t i = 0; i < x->n_types; i++)
                if (strcmp(x->types[i].name, name) == 0) {
                        *ret = &x->types[i];
                        return 0;
                }
        struct pindex_type *n = realloc(x->types, (x->n_types + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        x->types = n;
        struct pindex_type *t = &n[x->n_types];
        *t = (struct pindex_type){ .name = strdup(name), .pct = malloc(x->n_slots ? x->n_slots : 1) };
        if (!t->name || !t->pct) {
                free(t->name);
                free(t->pct);
                return -ENOMEM;
        }
        x->n_types++;
        *ret = t;
        return 0;
}

int pindex_percent(const struct pindex *x, const char *type, size_t slot) {
        for (size_t i = 0; i < x->n_types; i++)
                if (strcmp(x->types[i].name, type) == 0)
                        return x->types[i].built && !x->stale && slot < x->n_slots ? x->types[i].pct[slot]
                                                                                   : -ENOENT;
        return -ENOENT;
}

int pindex_choose(struct pindex *x, size_t n_slots, const char *type, const struct vgpu_fleet_policy *policy,
                  const char *key, size_t max, size_t *ret_slots, size_t *ret_n, size_t *ret_tied) {
        int r;
        if (x->stale || x->n_slots != n_slots)
                if ((r = rebuild(x, n_slots)) < 0)
                        return r;
        struct pindex_type *t;
        if ((r = type_get(x, type, &t)) < 0)
                return r;
        if (!t->built && (r = type_build(x, t)) < 0)
                return r;
        if (t->unusable)
                return -ERANGE;
        unsigned u0 = 0;
        while (u0 <= 100 && t->count[u0] == 0)
                u0++;
        if (u0 > 100)
                return -ENOENT;
        /* placement.c's band: within near_percent points of the lowest (no preferences here) */
        unsigned hi = u0 + policy->near_percent > 100 ? 100 : u0 + policy->near_percent;
        size_t n_tied = 0;
        for (unsigned u = u0; u <= hi; u++)
                n_tied += t->count[u];
        /* the tied slots in the fleet's order, this placer's share first (placement.c's rk) */
        size_t *rk = malloc(n_tied * sizeof(*rk));
        if (!rk)
                return -ENOMEM;
        bool shares = policy->n_shares > 1;
        size_t n_own = 0, n_other = 0;
        size_t *other = shares ? malloc(n_tied * sizeof(*other)) : NULL;
        if (shares && !other) {
                free(rk);
                return -ENOMEM;
        }
        for (size_t s = 0; s < x->n_slots; s++) {
                if (t->pct[s] > hi) /* PINDEX_NO_FIT too */
                        continue;
                if (n_own + n_other == n_tied) { /* the counts disagree with the bytes: a bug */
                        free(rk);
                        free(other);
                        t->unusable = true;
                        return -ERANGE;
                }
                if (!shares || x->share_key[s] % policy->n_shares == policy->share)
                        rk[n_own++] = s;
                else
                        other[n_other++] = s;
        }
        if (n_own + n_other != n_tied) {
                free(rk);
                free(other);
                t->unusable = true;
                return -ERANGE;
        }
        if (shares)
                memcpy(rk + n_own, other, n_other * sizeof(*rk));
        free(other);
        /* the draw, as placement.c draws */
        uint64_t h = fnv1a(key) ^ policy->seed;
        size_t pool = shares && n_own ? n_own : n_tied, pick = (size_t) (splitmix64(&h) % pool);
        size_t n = max < n_tied ? max : n_tied;
        for (size_t i = 0; i < n; i++)
                ret_slots[i] = i < pool ? rk[(pick + i) % pool] : rk[pool + (pick + i) % (n_tied - pool)];
        free(rk);
        *ret_n = n;
        *ret_tied = n_tied;
        return 0;
}
