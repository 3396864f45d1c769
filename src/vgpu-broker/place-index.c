/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * place-index.c — the broker's placement index (place-index.h). At 1,000 hosts x 8 GPUs a full
 * placement evaluated 8,000 GPUs (their types, allocations, hosts: a dozen cache lines each), and
 * with the near-equal band nearly all of them are tied, so no "best bucket" can be taken alone:
 * the draw is the k-th tied GPU in the fleet's order, k from the request's key. So the index keeps,
 * per class of request asked recently (a type, a VRAM size, a slice), one byte per GPU (its rank,
 * the utilization after placement in percent) and a count per percent: a choice reads the counts
 * for the lowest percent and the band, then one pass over the bytes (8 KB for 8,000 GPUs) for the
 * tied GPUs in order. Each GPU's percent comes from vgpu_fleet_place() itself on that one GPU with
 * the class's request, so the index cannot rank differently from it.
 *
 * The draw mirrors lib/fleet/placement.c: the tied GPUs are cut into equal runs by the key of
 * their id, one per placer (lib/fleet/shares.h); the pick is splitmix64 of FNV-1a(key) ^ seed
 * modulo the pool.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/hash-util.h"
#include "fleet/shares.h"
#include "place-index.h"

void pindex_init(struct pindex *x, pindex_candidate_fn candidate, void *userdata) {
        *x = (struct pindex){ .candidate = candidate, .userdata = userdata, .stale = true };
}

static void class_free(struct pindex_class *k) {
        free(k->type);
        free(k->pct);
        *k = (struct pindex_class){};
}

void pindex_done(struct pindex *x) {
        for (size_t i = 0; i < x->n_classes; i++)
                class_free(&x->classes[i]);
        free(x->classes);
        free(x->share_key);
        *x = (struct pindex){};
}

void pindex_invalidate(struct pindex *x) {
        x->stale = true;
}

static bool str_eq(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

bool pindex_applies(const struct vgpu_fleet_request *rq, const struct vgpu_fleet_policy *policy) {
        if (policy->policy != VGPU_FLEET_SPREAD || policy->near_percent == 0 || rq->n_models > 0 ||
            rq->n_prefer > 0)
                return false;
        switch (rq->kind) { /* what placement.c's request_check() accepts */
        case VGPU_FLEET_KIND_VGPU:
                return rq->type && *rq->type;
        case VGPU_FLEET_KIND_VRAM:
                return rq->vram_bytes > 0;
        case VGPU_FLEET_KIND_SLICE:
                return rq->slice_memory_bytes > 0 && rq->slice_share_percent <= 100;
        default:
                return false;
        }
}

/* the class's fields of rq, as the index keeps them */
static struct pindex_class class_of(const struct vgpu_fleet_request *rq) {
        struct pindex_class k = { .kind = rq->kind, .domain = rq->domain && *rq->domain };
        if (rq->kind == VGPU_FLEET_KIND_VGPU)
                k.type = (char *) rq->type;
        else if (rq->kind == VGPU_FLEET_KIND_VRAM)
                k.vram_bytes = rq->vram_bytes;
        else {
                k.slice_memory_bytes = rq->slice_memory_bytes;
                k.slice_share_percent = rq->slice_share_percent;
        }
        return k;
}

static bool class_eq(const struct pindex_class *a, const struct pindex_class *b) {
        return a->kind == b->kind && str_eq(a->type, b->type) && a->vram_bytes == b->vram_bytes &&
               a->slice_memory_bytes == b->slice_memory_bytes &&
               a->slice_share_percent == b->slice_share_percent && a->domain == b->domain;
}

static int class_fit_percent(const struct vgpu_fleet_candidate *c, const struct pindex_class *k) {
        struct vgpu_fleet_request rq = { .kind = k->kind,
                                         .type = k->type,
                                         .vram_bytes = k->vram_bytes,
                                         .slice_memory_bytes = k->slice_memory_bytes,
                                         .slice_share_percent = k->slice_share_percent,
                                         .domain = k->domain ? "domain" : NULL };
        return pindex_fit_percent(c, &rq);
}

int pindex_fit_percent(const struct vgpu_fleet_candidate *c, const struct vgpu_fleet_request *rq) {
        if (!c->gpu)
                return PINDEX_NO_FIT;
        /* only what decides the fit: no key (holds are not indexed), no models, no preferences */
        struct vgpu_fleet_request one = { .kind = rq->kind,
                                          .type = rq->type,
                                          .vram_bytes = rq->vram_bytes,
                                          .slice_memory_bytes = rq->slice_memory_bytes,
                                          .slice_share_percent = rq->slice_share_percent,
                                          .domain = rq->domain };
        struct vgpu_fleet_policy pol = { .policy = VGPU_FLEET_SPREAD };
        struct vgpu_fleet_placement p = {};
        struct vgpu_error err = {};
        if (vgpu_fleet_place(c, 1, &one, &pol, NULL, &p, &err) < 0)
                return -ERANGE;
        int r = PINDEX_NO_FIT;
        if (p.n_fits > 0) {
                long u = pindex_util_percent(p.fits[0].utilization_after);
                r = u < 0 || u > 100 ? -ERANGE : (int) u;
        }
        vgpu_fleet_placement_free(&p);
        return r;
}

static void class_set(struct pindex_class *k, size_t slot, int pct) {
        if (k->pct[slot] != PINDEX_NO_FIT)
                k->count[k->pct[slot]]--;
        if (pct < 0) {
                k->unusable = true;
                pct = PINDEX_NO_FIT;
        }
        k->pct[slot] = (uint8_t) pct;
        if (pct != PINDEX_NO_FIT)
                k->count[pct]++;
}

static void slot_share_key(struct pindex *x, size_t slot, const struct vgpu_fleet_candidate *c) {
        x->share_key[slot] = fleet_share_key(c->gpu ? c->gpu->gpu : NULL);
}

void pindex_update(struct pindex *x, size_t slot) {
        if (x->stale || slot >= x->n_slots)
                return;
        struct vgpu_fleet_candidate c = {};
        x->candidate(slot, &c, x->userdata);
        slot_share_key(x, slot, &c);
        for (size_t i = 0; i < x->n_classes; i++)
                if (x->classes[i].built)
                        class_set(&x->classes[i], slot, class_fit_percent(&c, &x->classes[i]));
}

/* Room for size slots in every per-slot array. */
static int reserve(struct pindex *x, size_t size) {
        if (size <= x->slots_size)
                return 0;
        uint64_t *s = realloc(x->share_key, size * sizeof(*s));
        if (!s)
                return -ENOMEM;
        x->share_key = s;
        for (size_t i = 0; i < x->n_classes; i++) {
                uint8_t *p = realloc(x->classes[i].pct, size);
                if (!p)
                        return -ENOMEM;
                x->classes[i].pct = p;
        }
        x->slots_size = size;
        return 0;
}

bool pindex_live(const struct pindex *x) {
        return !x->stale;
}

void pindex_add_slot(struct pindex *x) {
        if (x->stale)
                return;
        /* doubling: the array is copied log(n) times, not at every GPU a host adds */
        if (x->n_slots == x->slots_size && reserve(x, x->slots_size < 128 ? 256 : 2 * x->slots_size) < 0) {
                x->stale = true; /* rebuilt when next asked */
                return;
        }
        size_t slot = x->n_slots++;
        for (size_t i = 0; i < x->n_classes; i++)
                x->classes[i].pct[slot] = PINDEX_NO_FIT;
        pindex_update(x, slot);
}

void pindex_remove_slot(struct pindex *x, size_t slot) {
        if (x->stale)
                return;
        if (slot >= x->n_slots) {
                x->stale = true;
                return;
        }
        size_t last = --x->n_slots;
        for (size_t i = 0; i < x->n_classes; i++) {
                struct pindex_class *k = &x->classes[i];
                if (!k->built)
                        continue;
                if (k->pct[slot] != PINDEX_NO_FIT)
                        k->count[k->pct[slot]]--;
                k->pct[slot] = k->pct[last];
        }
        x->share_key[slot] = x->share_key[last];
}

/* Every slot again: the share keys now, the classes when next asked. */
static int rebuild(struct pindex *x, size_t n_slots) {
        int r = reserve(x, n_slots ? n_slots : 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < x->n_classes; i++)
                x->classes[i].built = false;
        x->n_slots = n_slots;
        for (size_t i = 0; i < n_slots; i++) {
                struct vgpu_fleet_candidate c = {};
                x->candidate(i, &c, x->userdata);
                slot_share_key(x, i, &c);
        }
        x->stale = false;
        return 0;
}

static void class_build(struct pindex *x, struct pindex_class *k) {
        memset(k->count, 0, sizeof(k->count));
        memset(k->pct, PINDEX_NO_FIT, x->n_slots);
        k->unusable = false;
        for (size_t s = 0; s < x->n_slots; s++) {
                struct vgpu_fleet_candidate c = {};
                x->candidate(s, &c, x->userdata);
                class_set(k, s, class_fit_percent(&c, k));
        }
        k->built = true;
}

static struct pindex_class *class_find(const struct pindex *x, const struct vgpu_fleet_request *rq) {
        struct pindex_class want = class_of(rq);
        for (size_t i = 0; i < x->n_classes; i++)
                if (class_eq(&x->classes[i], &want))
                        return &x->classes[i];
        return NULL;
}

/* rq's class, made (in the least recently used one's place when there are enough) if new */
static int class_get(struct pindex *x, const struct vgpu_fleet_request *rq, struct pindex_class **ret) {
        struct pindex_class *k = class_find(x, rq);
        if (k) {
                *ret = k;
                return 0;
        }
        struct pindex_class want = class_of(rq);
        if (x->n_classes < PINDEX_MAX_CLASSES) {
                struct pindex_class *n = realloc(x->classes, (x->n_classes + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                x->classes = n;
                k = &n[x->n_classes];
                *k = (struct pindex_class){};
        } else {
                k = &x->classes[0];
                for (size_t i = 1; i < x->n_classes; i++)
                        if (x->classes[i].used < k->used)
                                k = &x->classes[i];
                class_free(k);
        }
        *k = want;
        k->type = want.type ? strdup(want.type) : NULL;
        k->pct = malloc(x->slots_size ? x->slots_size : 1);
        if ((want.type && !k->type) || !k->pct) {
                class_free(k);
                *k = (struct pindex_class){ .kind = _VGPU_FLEET_KIND_MAX }; /* matches nothing */
                return -ENOMEM;
        }
        if (k == &x->classes[x->n_classes])
                x->n_classes++;
        *ret = k;
        return 0;
}

int pindex_percent(const struct pindex *x, const struct vgpu_fleet_request *rq, size_t slot) {
        const struct pindex_class *k = class_find(x, rq);
        return k && k->built && !x->stale && slot < x->n_slots ? k->pct[slot] : -ENOENT;
}

int pindex_choose(struct pindex *x, size_t n_slots, const struct vgpu_fleet_request *rq,
                  const struct vgpu_fleet_policy *policy, size_t max, size_t *ret_slots, size_t *ret_n,
                  size_t *ret_tied) {
        int r;
        if (!pindex_applies(rq, policy))
                return -ERANGE;
        if (x->stale || x->n_slots != n_slots)
                if ((r = rebuild(x, n_slots)) < 0)
                        return r;
        struct pindex_class *t;
        if ((r = class_get(x, rq, &t)) < 0)
                return r;
        t->used = ++x->clock;
        if (!t->built)
                class_build(x, t);
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
        size_t n = 0;
        for (size_t s = 0; s < x->n_slots && n <= n_tied; s++)
                if (t->pct[s] <= hi) /* PINDEX_NO_FIT is not */
                        rk[n++] = s;
        if (n != n_tied) { /* the counts disagree with the bytes: a bug */
                free(rk);
                t->unusable = true;
                return -ERANGE;
        }
        bool shares = policy->n_shares > 1;
        size_t n_own = n_tied;
        if (shares) {
                /* the tied cut into equal runs by key (lib/fleet/shares.h), this placer's run first */
                uint64_t *keys = malloc(n_tied * sizeof(*keys)),
                         *bounds = malloc((policy->n_shares - 1) * sizeof(*bounds));
                size_t *other = malloc(n_tied * sizeof(*other)), n_other = 0;
                if (!keys || !bounds || !other) {
                        free(keys), free(bounds), free(other), free(rk);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n_tied; i++)
                        keys[i] = x->share_key[rk[i]];
                fleet_share_bounds(keys, n_tied, policy->n_shares, bounds);
                n_own = 0;
                for (size_t i = 0; i < n_tied; i++)
                        if (fleet_share_of(x->share_key[rk[i]], bounds, policy->n_shares) == policy->share)
                                rk[n_own++] = rk[i];
                        else
                                other[n_other++] = rk[i];
                memcpy(rk + n_own, other, n_other * sizeof(*rk));
                free(keys), free(bounds), free(other);
        }
        /* the draw, as placement.c draws */
        uint64_t h = fnv1a(rq->idempotency_key) ^ policy->seed;
        size_t pool = shares && n_own ? n_own : n_tied, pick = (size_t) (splitmix64(&h) % pool);
        n = max < n_tied ? max : n_tied;
        for (size_t i = 0; i < n; i++)
                ret_slots[i] = i < pool ? rk[(pick + i) % pool] : rk[pool + (pick + i) % (n_tied - pool)];
        free(rk);
        *ret_n = n;
        *ret_tied = n_tied;
        return 0;
}
