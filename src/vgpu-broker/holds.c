/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * holds.c — large requests are not starved (doc/fleet.md, "Placement"). Under spread, small
 * sessions land on the emptiest GPUs, so a request needing most of a GPU may never find one
 * free. When such a request is refused, the broker holds the GPU that would take it soonest
 * (the least claimed among those that could take it empty): holds/<gpu>, bound to a lease of
 * --hold-ttl seconds, names the request's idempotency key. Placement's `held` filter keeps every
 * other request from eating into that memory; the holder's retry (same key) passes it, and its
 * claim drops the hold. A hold nobody comes back for expires with its lease.
 *
 * Only a request of at least half a GPU holds: small ones fit in the fragments, and a burst of
 * refused small requests must not freeze the fleet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-util.h"

bool holds_pick(struct broker *b, const struct vgpu_fleet_request *rq, char *ret_gpu, size_t size,
                uint64_t *ret_bytes) {
        struct view v;
        struct vgpu_fleet_placement p = {};
        struct vgpu_error err = {};
        struct vgpu_fleet_policy policy = { .policy = VGPU_FLEET_SPREAD, .seed = b->cfg.seed };
        bool found = false;
        if (b->cfg.hold_ttl_s <= 0)
                return false;
        pthread_rwlock_rdlock(&b->cache.lock);
        if (view_build(b, NULL, NULL, 0, &v) >= 0) {
                /* where it would fit if the GPU were empty, and nobody else held it */
                struct vgpu_fleet_candidate *empty = calloc(v.n ? v.n : 1, sizeof(*empty));
                for (size_t i = 0; empty && i < v.n; i++) {
                        empty[i] = v.c[i];
                        empty[i].alloc = NULL;
                        if (v.c[i].held_bytes && !streq(v.c[i].held_for, rq->idempotency_key))
                                empty[i].host_alive = false; /* held for another: not this one's */
                        else
                                empty[i].held_bytes = 0;
                }
                if (empty && vgpu_fleet_place(empty, v.n, rq, &policy, NULL, &p, &err) >= 0) {
                        const struct vgpu_fleet_fit *best = NULL;
                        uint64_t best_used = UINT64_MAX;
                        for (size_t i = 0; i < p.n_fits; i++) {
                                const struct vgpu_fleet_candidate *c = &v.c[p.fits[i].index];
                                uint64_t used = c->alloc ? c->alloc->vram_bytes : 0;
                                uint64_t cap =
                                        c->gpu->mode == VGPU_FLEET_MODE_SLICE && c->gpu->slice_memory_bytes
                                                ? c->gpu->slice_memory_bytes
                                                : c->gpu->vram_total_bytes;
                                if (p.fits[i].vram_bytes * 2 < cap || used >= best_used)
                                        continue;
                                best = &p.fits[i];
                                best_used = used;
                        }
                        if (best) {
                                snprintf(ret_gpu, size, "%s", v.c[best->index].gpu->gpu);
                                *ret_bytes = best->vram_bytes;
                                found = true;
                        }
                }
                free(empty);
                vgpu_fleet_placement_free(&p);
                view_done(&v);
        }
        pthread_rwlock_unlock(&b->cache.lock);
        return found;
}

void holds_place(struct broker *b, struct vgpu_etcd *e, const char *gpu, const char *key, uint64_t bytes) {
        char hkey[VGPU_FLEET_KEY_MAX];
        struct vgpu_error err = {};
        int64_t lease;
        key_of(b, hkey, sizeof(hkey), "holds", gpu, NULL);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "idempotency_key", json_object_new_string(key));
        json_object_object_add(o, "vram_bytes", json_object_new_int64((int64_t) bytes));
        _cleanup_free_ char *value = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (!value || vgpu_etcd_lease_grant(e, b->cfg.hold_ttl_s, &lease, &err) < 0)
                return;
        /* create-if-absent: a GPU holds for one request at a time */
        struct vgpu_etcd_compare cmp = { hkey, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0 };
        struct vgpu_etcd_op put = { VGPU_ETCD_OP_PUT, hkey, value, lease };
        struct vgpu_etcd_txn_result tr = {};
        if (vgpu_etcd_txn(e, &cmp, 1, &put, 1, NULL, 0, &tr, &err) >= 0 && tr.succeeded) {
                /* in this broker's cache at once: the holder's retry here must find it to drop it */
                pthread_rwlock_wrlock(&b->cache.lock);
                cache_put_locked(b, hkey, value, tr.revision, lease);
                pthread_rwlock_unlock(&b->cache.lock);
                atomic_fetch_add(&b->holds, 1);
                broker_log(LOG_INFO, "holds %s for request %s (%llu bytes)", gpu, key,
                           (unsigned long long) bytes);
        } else
                (void) vgpu_etcd_lease_revoke(e, lease, &err);
        vgpu_etcd_txn_result_free(&tr);
}

void holds_drop(struct broker *b, struct vgpu_etcd *e, const char *gpu, const char *key) {
        char hkey[VGPU_FLEET_KEY_MAX];
        struct vgpu_error err = {};
        int64_t lease = 0, mod = 0;
        key_of(b, hkey, sizeof(hkey), "holds", gpu, NULL);
        pthread_rwlock_rdlock(&b->cache.lock);
        struct entry *h = cache_get(&b->cache, hkey);
        if (h && h->valid && streq(h->u.hold.idempotency_key, key)) {
                lease = h->lease;
                mod = h->mod_revision;
        }
        pthread_rwlock_unlock(&b->cache.lock);
        if (!mod)
                return;
        /* revoking the lease deletes the key; only if it is still ours */
        struct vgpu_etcd_compare cmp = { hkey, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, mod };
        struct vgpu_etcd_op del = { VGPU_ETCD_OP_DELETE, hkey };
        struct vgpu_etcd_txn_result tr = {};
        if (vgpu_etcd_txn(e, &cmp, 1, &del, 1, NULL, 0, &tr, &err) >= 0 && tr.succeeded && lease)
                (void) vgpu_etcd_lease_revoke(e, lease, &err);
        vgpu_etcd_txn_result_free(&tr);
}
