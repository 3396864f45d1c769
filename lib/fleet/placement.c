/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * placement.c — where a request goes (doc/fleet.md, "Placement"). Pure: the broker hands its
 * cached view, so the same view and seed give the same answer (the unit tests replay it).
 *
 * Filters, in order (a GPU is counted under the first one it fails, for 503's explanation):
 * host alive, not cordoned, healthy, model allowed, type compatible (mode, the type exists, the
 * equal-size "type lock": an NVIDIA GPU in vGPU mode runs one type at a time), free memory
 * (and instances, share), memory held for an older request, tenant quota.
 * Score, in order: VRAM utilization after placement in 1 % steps (lowest first for spread,
 * highest for binpack), the first soft preference matched, fewer sessions, cooler (5 °C steps).
 * Candidates equal on all of these are tied — or, with the policy's near_percent band, those
 * within that many points of the lowest utilization and of the best preference among them: one
 * is drawn at random, seeded by the policy's seed and the request's idempotency key, so a retry
 * replays and brokers do not all pick the same GPU at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "basic/error-util.h"
#include "basic/hash-util.h"
#include "basic/macro.h"
#include "fleet/fleet-internal.h"
#include "fleet/shares.h"

_public_ void vgpu_fleet_placement_free(struct vgpu_fleet_placement *p) {
        if (!p)
                return;
        free(p->fits);
        *p = (struct vgpu_fleet_placement){};
}

static bool contains_ci(const char *hay, const char *needle) {
        return hay && needle && *needle && strcasestr(hay, needle) != NULL;
}

static bool model_allowed(const struct vgpu_fleet_gpu *g, const struct vgpu_fleet_request *req) {
        if (req->n_models == 0)
                return true;
        for (size_t i = 0; i < req->n_models; i++)
                if (contains_ci(g->model, req->models[i]))
                        return true;
        return false;
}

static unsigned preference(const struct vgpu_fleet_gpu *g, const struct vgpu_fleet_request *req) {
        for (size_t i = 0; i < req->n_prefer; i++) {
                const char *p = req->prefer[i];
                if (streq(p, g->host) || streq(p, g->gpu) || contains_ci(g->model, p))
                        return (unsigned) i;
        }
        return (unsigned) req->n_prefer;
}

/* The memory a slice-mode GPU offers: its slice capacity, else all of it. */
static uint64_t capacity(const struct vgpu_fleet_gpu *g) {
        return g->mode == VGPU_FLEET_MODE_SLICE && g->slice_memory_bytes ? g->slice_memory_bytes
                                                                         : g->vram_total_bytes;
}

/* Whether a type other than t can still be created on g: then t's 0 free instances mean the
 * GPU runs another type (NVIDIA's equal-size mode), not that it is full of t. */
static bool other_type_free(const struct vgpu_fleet_gpu *g, const struct vgpu_fleet_type *t) {
        for (size_t i = 0; i < g->n_types; i++)
                if (&g->types[i] != t && g->types[i].free_instances > 0)
                        return true;
        return false;
}

/* What the request takes on this GPU; the filter that refuses it otherwise.
 *
 * The host publishes what it runs, the fleet's realized instances included (vram_used_bytes,
 * each type's free_instances); alloc/<gpu> holds every claim, realized or not. Neither alone
 * is the truth: instances outside the fleet (an admin's) are only in the first, PENDING claims
 * only in the second. So the larger of the two counts: used memory is max(alloc, published
 * used), a type's taken instances max(claims, max_instances - free_instances), and a type the
 * host offers no free instance of is refused (the type filter when another type still has free
 * instances: the GPU runs that one). The max never counts the fleet's own instances twice; it
 * can count less than the truth while the fleet's PENDING claims and an admin's instances share
 * a GPU, and the host's free count catches up one poll later (doc/fleet.md). */
static int fit_one(const struct vgpu_fleet_candidate *c, const struct vgpu_fleet_request *req,
                   struct vgpu_fleet_fit *f) {
        const struct vgpu_fleet_gpu *g = c->gpu;
        const struct vgpu_fleet_alloc *a = c->alloc;
        uint64_t used = a ? a->vram_bytes : 0, cap = capacity(g);
        if (g->mode == VGPU_FLEET_MODE_VGPU && g->vram_used_bytes > used)
                used = g->vram_used_bytes;
        /* slice mode: the capacity leaves out the fleet's own slices, which the host publishes
         * apart; they are claims in alloc too, so the larger of the two, as for vGPUs */
        if (g->mode == VGPU_FLEET_MODE_SLICE && g->slice_fleet_memory_bytes > used)
                used = g->slice_fleet_memory_bytes;
        uint64_t free_bytes = cap > used ? cap - used : 0;
        unsigned n_claims = a ? (unsigned) a->n_claims : 0;
        const char *lock = a && a->n_claims > 0 ? a->type_lock : NULL;

        if (g->mode == VGPU_FLEET_MODE_VGPU && req->kind != VGPU_FLEET_KIND_SLICE) {
                /* the smallest type that is the one asked for, or is big enough for vram */
                const struct vgpu_fleet_type *best = NULL;
                bool type_ok = false;
                for (size_t i = 0; i < g->n_types; i++) {
                        const struct vgpu_fleet_type *t = &g->types[i];
                        if (req->kind == VGPU_FLEET_KIND_VGPU ? !streq(t->name, req->type)
                                                              : t->framebuffer_bytes < req->vram_bytes)
                                continue;
                        if (lock && !streq(lock, t->name))
                                continue;
                        if (t->free_instances == 0 && other_type_free(g, t))
                                continue; /* the host runs another type */
                        type_ok = true;
                        unsigned taken = n_claims, running = t->max_instances > t->free_instances
                                                                     ? t->max_instances - t->free_instances
                                                                     : 0;
                        if (running > taken)
                                taken = running;
                        if (t->framebuffer_bytes > free_bytes || t->free_instances == 0 ||
                            (t->max_instances && taken >= t->max_instances))
                                continue;
                        if (!best || t->framebuffer_bytes < best->framebuffer_bytes)
                                best = t;
                }
                if (!type_ok)
                        return VGPU_FLEET_FILTER_TYPE;
                if (!best)
                        return VGPU_FLEET_FILTER_VRAM;
                f->kind = VGPU_FLEET_KIND_VGPU;
                f->type = best->name;
                f->vram_bytes = best->framebuffer_bytes;
                f->share_percent = 0;
        } else if (g->mode == VGPU_FLEET_MODE_SLICE && req->kind != VGPU_FLEET_KIND_VGPU &&
                   !(req->domain && req->domain[0])) {
                /* (a domain takes a vGPU: a slice is for containers, it cannot be attached) */
                uint64_t need =
                        req->kind == VGPU_FLEET_KIND_SLICE ? req->slice_memory_bytes : req->vram_bytes;
                unsigned share = req->kind == VGPU_FLEET_KIND_SLICE ? req->slice_share_percent : 0;
                unsigned share_cap = g->slice_share_percent ? g->slice_share_percent : 100;
                unsigned share_used = a ? a->share_percent : 0;
                if (g->slice_fleet_share_percent > share_used)
                        share_used = g->slice_fleet_share_percent;
                if (need > free_bytes || share_used + share > share_cap)
                        return VGPU_FLEET_FILTER_VRAM;
                f->kind = VGPU_FLEET_KIND_SLICE;
                f->type = NULL;
                f->vram_bytes = need;
                f->share_percent = share;
        } else
                return VGPU_FLEET_FILTER_TYPE;

        if (c->held_bytes > 0 && !streq(c->held_for, req->idempotency_key) &&
            free_bytes - f->vram_bytes < c->held_bytes)
                return VGPU_FLEET_FILTER_HELD;
        f->utilization_after = cap ? (double) (used + f->vram_bytes) / (double) cap : 1.0;
        f->sessions = n_claims;
        f->preference = preference(g, req);
        return -1;
}

/* the sort keys of one fit; equal keys = tied */
struct rank {
        long util; /* percent, negated for binpack */
        unsigned pref, sessions;
        int temp; /* 5 °C steps; unknown sorts last */
};

struct ranked {
        struct vgpu_fleet_fit fit;
        struct rank k;
};

static int rank_cmp(const struct rank *a, const struct rank *b) {
        if (a->util != b->util)
                return a->util < b->util ? -1 : 1;
        if (a->pref != b->pref)
                return a->pref < b->pref ? -1 : 1;
        if (a->sessions != b->sessions)
                return a->sessions < b->sessions ? -1 : 1;
        if (a->temp != b->temp)
                return a->temp < b->temp ? -1 : 1;
        return 0;
}

static int ranked_cmp(const void *x, const void *y) {
        const struct ranked *a = x, *b = y;
        int r = rank_cmp(&a->k, &b->k);
        /* equal: the caller's order (not the names: strcmp over thousands of tied GPUs was most of
         * a placement's time), which is stable for one view, so a draw replays */
        return r ? r : a->fit.index < b->fit.index ? -1 : a->fit.index > b->fit.index;
}

/* The best of a view under a band: the lowest utilization u0 (its negation for binpack), then
 * the best preference among the candidates within band points of u0. */
static struct rank band_best(const struct ranked *rk, size_t m, unsigned band) {
        struct rank b = rk[0].k;
        for (size_t i = 1; i < m; i++)
                if (rk[i].k.util < b.util)
                        b.util = rk[i].k.util;
        b.pref = UINT_MAX;
        for (size_t i = 0; i < m; i++)
                if (rk[i].k.util - b.util <= (long) band && rk[i].k.pref < b.pref)
                        b.pref = rk[i].k.pref;
        return b;
}

/* Whether a is near-equal to the best b: with a band, utilization within band points of the
 * lowest and the best preference among those (session count and temperature no longer decide:
 * the "ties broken at random among near-equal candidates"); without one, equal in every
 * key. The band lets brokers placing at once spread over a fleet's many nearly equal GPUs
 * instead of all racing for the few emptiest ones, whose claims then conflict. */
static bool near_equal(const struct rank *a, const struct rank *b, unsigned band) {
        if (band == 0)
                return rank_cmp(a, b) == 0;
        return a->pref == b->pref && a->util - b->util <= (long) band;
}

static int request_check(const struct vgpu_fleet_request *req, struct vgpu_error *err) {
        switch (req->kind) {
        case VGPU_FLEET_KIND_VGPU:
                if (!req->type || !*req->type)
                        return vgpu_error_set(err, -EINVAL, "type: a vGPU request names its type");
                break;
        case VGPU_FLEET_KIND_VRAM:
                if (req->vram_bytes == 0)
                        return vgpu_error_set(err, -EINVAL, "vram_bytes: must be more than 0");
                break;
        case VGPU_FLEET_KIND_SLICE:
                if (req->slice_memory_bytes == 0)
                        return vgpu_error_set(err, -EINVAL, "slice.memory_bytes: must be more than 0");
                if (req->slice_share_percent > 100)
                        return vgpu_error_set(err, -EINVAL, "slice.share_percent: at most 100");
                break;
        default:
                return vgpu_error_set(err, -EINVAL, "kind: vgpu, vram or slice");
        }
        return 0;
}

_public_ int vgpu_fleet_place(const struct vgpu_fleet_candidate *c, size_t n,
                              const struct vgpu_fleet_request *req, const struct vgpu_fleet_policy *policy,
                              const struct vgpu_fleet_quota *usage, struct vgpu_fleet_placement *ret,
                              struct vgpu_error *err) {
        struct vgpu_fleet_placement p = {};
        int r = request_check(req, err);
        if (r < 0)
                return r;
        /* malloc, not calloc: each element is written before it is read, and zeroing megabytes
         * per placement of a big fleet evicted the GPUs' data it is about to read */
        _cleanup_free_ struct ranked *rk = n ? malloc(n * sizeof(*rk)) : NULL;
        if (n && !rk)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_fleet_gpu *g = c[i].gpu;
                struct vgpu_fleet_fit f = { .index = i };
                int why = -1;
                if (!c[i].host_alive)
                        why = VGPU_FLEET_FILTER_HOST_ALIVE;
                else if (c[i].cordoned)
                        why = VGPU_FLEET_FILTER_CORDONED;
                else if (g->degraded)
                        why = VGPU_FLEET_FILTER_HEALTH;
                else if (!model_allowed(g, req))
                        why = VGPU_FLEET_FILTER_MODEL;
                else
                        why = fit_one(&c[i], req, &f);
                if (why < 0 && usage &&
                    ((policy->quota_vram_bytes &&
                      usage->vram_bytes + f.vram_bytes > policy->quota_vram_bytes) ||
                     (policy->quota_sessions && usage->sessions + 1 > policy->quota_sessions)))
                        why = VGPU_FLEET_FILTER_QUOTA;
                if (why >= 0) {
                        p.rejected[why]++;
                        continue;
                }
                long util = (long) (f.utilization_after * 100.0 + 1e-9);
                rk[m++] = (struct ranked){
                        .fit = f,
                        .k = { .util = policy->policy == VGPU_FLEET_BINPACK ? -util : util,
                               .pref = f.preference,
                               .sessions = f.sessions,
                               .temp = g->has_temperature ? g->temperature_celsius / 5 : INT_MAX },
                };
        }
        if (m > 0) {
                if (!(p.fits = malloc(m * sizeof(*p.fits))))
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                /* the best, then every candidate near-equal to it first (in the caller's order,
                 * stable for one view, so a draw replays), the others after it, sorted: one pass
                 * and a sort of the rest, not of the fleet (with a band most of a big fleet is tied) */
                struct rank b0 = rk[0].k;
                if (policy->near_percent > 0)
                        b0 = band_best(rk, m, policy->near_percent);
                else
                        for (size_t i = 1; i < m; i++)
                                if (rank_cmp(&rk[i].k, &b0) < 0)
                                        b0 = rk[i].k;
                /* the untied ones, then (n_rest + n_tied == m) scratch for the shares */
                _cleanup_free_ struct ranked *rest = malloc(m * sizeof(*rest));
                if (!rest) {
                        vgpu_fleet_placement_free(&p);
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                }
                size_t n_rest = 0;
                for (size_t i = 0; i < m; i++)
                        if (near_equal(&rk[i].k, &b0, policy->near_percent))
                                rk[p.n_tied++] = rk[i];
                        else
                                rest[n_rest++] = rk[i];
                qsort_safe(rest, n_rest, sizeof(*rest), ranked_cmp);
                /* this placer's share of the tied ones first (the others after), each part in
                 * the caller's order */
                size_t n_own = 0;
                if (policy->n_shares > 1) {
                        /* the tied cut into equal runs by key (shares.h) */
                        _cleanup_free_ uint64_t *keys = malloc(2 * p.n_tied * sizeof(*keys)),
                                                *bounds = malloc((policy->n_shares - 1) * sizeof(*bounds));
                        uint64_t *tied_key = keys + p.n_tied; /* in rk's order; keys is reordered */
                        if (!keys || !bounds) {
                                vgpu_fleet_placement_free(&p);
                                return vgpu_error_set(err, -ENOMEM, "out of memory");
                        }
                        for (size_t i = 0; i < p.n_tied; i++)
                                tied_key[i] = keys[i] = fleet_share_key(c[rk[i].fit.index].gpu->gpu);
                        fleet_share_bounds(keys, p.n_tied, policy->n_shares, bounds);
                        struct ranked *own = rest + n_rest;
                        size_t n_other = 0;
                        for (size_t i = 0; i < p.n_tied; i++)
                                if (fleet_share_of(tied_key[i], bounds, policy->n_shares) == policy->share)
                                        own[n_own++] = rk[i];
                                else
                                        rk[n_other++] = rk[i];
                        memmove(rk + n_own, rk, n_other * sizeof(*rk));
                        memcpy(rk, own, n_own * sizeof(*rk));
                }
                /* the draw, among this placer's share when it has any: FNV-1a of the idempotency
                 * key mixed with the seed. Each part follows from the drawn one round, so a
                 * request whose pick is busy (another request of this broker claims it) falls
                 * back to a GPU of its own draw, not to the one every such request falls back to. */
                uint64_t x = fnv1a(req->idempotency_key) ^ policy->seed;
                size_t pool = n_own ? n_own : p.n_tied, pick = (size_t) (splitmix64(&x) % pool);
                for (size_t i = 0; i < pool; i++)
                        p.fits[i] = rk[(pick + i) % pool].fit;
                for (size_t i = pool; i < p.n_tied; i++)
                        p.fits[i] = rk[pool + (pick + i) % (p.n_tied - pool)].fit;
                for (size_t i = 0; i < n_rest; i++)
                        p.fits[p.n_tied + i] = rest[i].fit;
                p.n_fits = m;
        }
        *ret = p;
        return 0;
}

static int strv_add(char ***v, size_t *n, const char *s) {
        char **nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        *v = nv;
        if (!(nv[*n] = strdup(s)))
                return -ENOMEM;
        nv[++*n] = NULL;
        return 0;
}

_public_ int vgpu_fleet_alloc_apply(const struct vgpu_fleet_alloc *before,
                                    const struct vgpu_fleet_claim *claim, int sign,
                                    struct vgpu_fleet_alloc *ret, struct vgpu_error *err) {
        struct vgpu_fleet_alloc a = {};
        bool present = false;
        int r = 0;
        if (!(a.host = strdup(claim->host)) || !(a.gpu = strdup(claim->gpu)))
                r = -ENOMEM;
        for (size_t i = 0; r == 0 && before && i < before->n_claims; i++) {
                if (streq(before->claims[i], claim->claim)) {
                        present = true;
                        if (sign < 0)
                                continue;
                }
                r = strv_add(&a.claims, &a.n_claims, before->claims[i]);
        }
        if (r == 0 && sign > 0 && present) {
                vgpu_fleet_alloc_free(&a);
                return vgpu_error_set(err, -EEXIST, "alloc/%s: claim %s is counted already", claim->gpu,
                                      claim->claim);
        }
        if (r == 0 && sign > 0)
                r = strv_add(&a.claims, &a.n_claims, claim->claim);
        if (r < 0) {
                vgpu_fleet_alloc_free(&a);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        uint64_t vram = before ? before->vram_bytes : 0;
        unsigned share = before ? before->share_percent : 0;
        unsigned claim_share = claim->has_slice ? claim->slice_share_percent : 0;
        if (sign > 0) {
                a.vram_bytes = vram + claim->vram_bytes;
                a.share_percent = share + claim_share;
        } else if (present) {
                /* never below 0: a reconcile may have rewritten the counts in between */
                a.vram_bytes = vram > claim->vram_bytes ? vram - claim->vram_bytes : 0;
                a.share_percent = share > claim_share ? share - claim_share : 0;
        } else {
                a.vram_bytes = vram;
                a.share_percent = share;
        }
        /* the type lock follows the claims: set by the first vGPU, gone with the last */
        const char *lock = a.n_claims == 0                                       ? NULL
                           : before && before->type_lock && before->n_claims > 0 ? before->type_lock
                           : claim->kind == VGPU_FLEET_KIND_VGPU && sign > 0     ? claim->type
                                                                                 : NULL;
        if (lock && !(a.type_lock = strdup(lock))) {
                vgpu_fleet_alloc_free(&a);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        *ret = a;
        return 0;
}
