/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * place-fast.c — a placement drawn from the cache's index (place-index.c) instead of a view of
 * every GPU. Only for requests whose outcome the index can know: spread with a near-equal band,
 * and none of the filters that depend on the request (models, preferences, quota, holds, GPUs
 * excluded after a lost claim); any other request, and any request no GPU can take
 * (its 503 counts every filter), takes the full scan (api.c). The fits given back are those
 * vgpu_fleet_place() puts first over the full view, each computed again by vgpu_fleet_place() on
 * its one GPU, so the claim is made from placement's own numbers; an index that disagrees with
 * them is rebuilt and the full scan decides.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api-util.h"

bool place_fast_applies(struct broker *b, const struct vgpu_fleet_request *rq,
                        const struct vgpu_fleet_policy *policy, bool quotas, size_t n_excluded) {
        return pindex_applies(rq, policy) && !quotas && n_excluded == 0 && b->cache.n_valid[KIND_HOLD] == 0;
}

int place_fast(struct broker *b, const struct vgpu_fleet_request *rq, const struct vgpu_fleet_policy *policy,
               size_t max, struct view *v, struct vgpu_fleet_placement *ret) {
        struct cache *c = &b->cache;
        size_t slots[PLACE_FAST_MAX], n = 0, tied = 0;
        if (max > PLACE_FAST_MAX)
                max = PLACE_FAST_MAX;
        pthread_mutex_lock(&c->index_lock);
        int r = pindex_choose(&c->index, c->n_gpus, rq, policy, max, slots, &n, &tied);
        /* what the index ranked each by, to be compared with placement's own fit below */
        int ranked[PLACE_FAST_MAX];
        for (size_t i = 0; r == 0 && i < n; i++)
                ranked[i] = pindex_percent(&c->index, rq, slots[i]);
        pthread_mutex_unlock(&c->index_lock);
        if (r < 0)
                return r == -ENOMEM ? r : 1;

        struct vgpu_fleet_placement p = { .n_tied = tied };
        if (view_alloc(v, n) < 0 || !(p.fits = malloc(n * sizeof(*p.fits)))) {
                view_done(v);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                view_add(v, c->gpus[slots[i]]);
                struct vgpu_fleet_placement one = {};
                struct vgpu_error err = {};
                bool ok = v->c[i].gpu && vgpu_fleet_place(&v->c[i], 1, rq, policy, NULL, &one, &err) >= 0 &&
                          one.n_fits == 1 &&
                          pindex_util_percent(one.fits[0].utilization_after) == (long) ranked[i];
                if (ok) {
                        p.fits[i] = one.fits[0];
                        p.fits[i].index = i;
                }
                vgpu_fleet_placement_free(&one);
                if (!ok) {
                        broker_log(LOG_WARN,
                                   "placement index: GPU %s ranked %d, placement disagrees: rebuilt",
                                   v->c[i].gpu ? v->c[i].gpu->gpu : "?", ranked[i]);
                        pthread_mutex_lock(&c->index_lock);
                        pindex_invalidate(&c->index);
                        pthread_mutex_unlock(&c->index_lock);
                        view_done(v);
                        free(p.fits);
                        return 1;
                }
        }
        p.n_fits = n;
        *ret = p;
        return 0;
}
