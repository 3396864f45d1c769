/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * holds.c — large requests are not starved (doc/fleet.md, "Placement"). Under spread, small
 * sessions land on the emptiest GPUs, so a request needing most of a GPU may never find one
 * free. When such a request is refused it waits: waits/<session> records when it first waited
 * (since_ms, in etcd so every broker orders the waiters alike) and the memory it needs, bound to
 * a lease of --hold-ttl seconds that each refused retry keeps alive, so a request nobody retries
 * any more stops waiting within the TTL. The broker also holds the GPU that would take it soonest
 * (the least claimed among those that could take it empty and nobody else holds): holds/<gpu>,
 * bound to the same lease. Placement's `held` filter keeps other requests from eating into that
 * memory. The request's claim revokes the lease: its wait and holds go at once.
 *
 * Waiters are served oldest first (holds_order): a waiting request passes the hold of a younger
 * waiter, and may not take memory an older waiter needs (a hold of the older one's size on
 * every GPU big enough for it, in the waiting request's view). So when capacity frees, on
 * whichever GPU, the oldest waiter that fits gets it, whichever broker each retry reaches.
 *
 * Only a request of at least half a GPU waits: small ones fit in the fragments, and a burst of
 * refused small requests must not freeze the fleet (small requests only keep off held GPUs).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api-util.h"

static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t capacity(const struct vgpu_fleet_gpu *g) {
        return g->mode == VGPU_FLEET_MODE_SLICE && g->slice_memory_bytes ? g->slice_memory_bytes
                                                                         : g->vram_total_bytes;
}

/* waits/<session of key> in the cache, when it is there and valid; under the cache's lock */
static const struct entry *wait_of(struct broker *b, const char *key) {
        char sid[33];
        if (!key)
                return NULL;
        vgpu_fleet_session_id(key, sid);
        const struct entry *w = cache_lookup(b, "waits", sid);
        return w && w->valid ? w : NULL;
}

/* Whether waiter a waited before b (ties by key, so every broker orders them alike). */
static bool older(int64_t a_since, const char *a_key, int64_t b_since, const char *b_key) {
        return a_since != b_since ? a_since < b_since : strcmp(a_key, b_key) < 0;
}

void holds_order(struct broker *b, const struct vgpu_fleet_request *rq, struct view *v) {
        if (!rq->idempotency_key || !cache_next(&b->cache, KIND_WAIT, NULL))
                return; /* nobody waits: the holds as they are */
        const struct entry *me = wait_of(b, rq->idempotency_key);
        if (!me)
                return; /* not waiting: younger than every waiter, every hold applies */
        int64_t since = me->u.hold.since_ms;
        /* the most memory an older waiter needs */
        const struct hold *first = NULL;
        for (struct entry *w = NULL; (w = cache_next(&b->cache, KIND_WAIT, w));)
                if (w->valid && w != me && !streq(w->u.hold.idempotency_key, rq->idempotency_key) &&
                    older(w->u.hold.since_ms, w->u.hold.idempotency_key, since, rq->idempotency_key) &&
                    (!first || w->u.hold.vram_bytes > first->vram_bytes))
                        first = &w->u.hold;
        for (size_t i = 0; i < v->n; i++) {
                struct vgpu_fleet_candidate *c = &v->c[i];
                const struct entry *h = v->gpu[i]->link[LINK_HOLD];
                /* a younger waiter's hold does not keep an older one off */
                if (c->held_bytes && h && h->valid && !streq(c->held_for, rq->idempotency_key) &&
                    older(since, rq->idempotency_key, h->u.hold.since_ms, h->u.hold.idempotency_key)) {
                        c->held_bytes = 0;
                        c->held_for = NULL;
                }
                if (streq(c->held_for, rq->idempotency_key)) {
                        c->held_bytes = 0; /* our own hold keeps nobody else off in our view */
                        c->held_for = NULL;
                }
                /* an older waiter's memory is kept free on every GPU that could take it */
                if (first && capacity(c->gpu) >= first->vram_bytes && first->vram_bytes > c->held_bytes) {
                        c->held_bytes = first->vram_bytes;
                        c->held_for = first->idempotency_key;
                }
        }
}

bool holds_pick(struct broker *b, const struct vgpu_fleet_request *rq, char *ret_gpu, size_t size,
                uint64_t *ret_bytes) {
        struct view v;
        struct vgpu_fleet_placement p = {};
        struct vgpu_error err = {};
        struct vgpu_fleet_policy policy = { .policy = VGPU_FLEET_SPREAD, .seed = b->cfg.seed };
        bool large = false;
        if (b->cfg.hold_ttl_s <= 0 || !rq->idempotency_key)
                return false;
        ret_gpu[0] = '\0';
        pthread_rwlock_rdlock(&b->cache.lock);
        if (view_build(b, NULL, NULL, 0, &v) >= 0) {
                /* where it would fit if the GPU were empty and nobody held it */
                struct vgpu_fleet_candidate *empty = calloc(v.n ? v.n : 1, sizeof(*empty));
                for (size_t i = 0; empty && i < v.n; i++) {
                        empty[i] = v.c[i];
                        empty[i].alloc = NULL;
                        empty[i].held_bytes = 0;
                }
                if (empty && vgpu_fleet_place(empty, v.n, rq, &policy, NULL, &p, &err) >= 0) {
                        const struct vgpu_fleet_fit *best = NULL;
                        uint64_t best_used = UINT64_MAX;
                        for (size_t i = 0; i < p.n_fits; i++) {
                                const struct vgpu_fleet_candidate *c = &v.c[p.fits[i].index];
                                if (p.fits[i].vram_bytes * 2 < capacity(c->gpu))
                                        continue;
                                if (!large)
                                        *ret_bytes = p.fits[i].vram_bytes;
                                large = true;
                                /* a GPU held for another request is not this one's to hold */
                                uint64_t used = c->alloc ? c->alloc->vram_bytes : 0;
                                if ((c->held_bytes && !streq(c->held_for, rq->idempotency_key)) ||
                                    used >= best_used)
                                        continue;
                                best = &p.fits[i];
                                best_used = used;
                        }
                        if (best) {
                                snprintf(ret_gpu, size, "%s", v.c[best->index].gpu->gpu);
                                *ret_bytes = best->vram_bytes;
                        }
                }
                free(empty);
                vgpu_fleet_placement_free(&p);
                view_done(&v);
        }
        pthread_rwlock_unlock(&b->cache.lock);
        return large;
}

static char *hold_value(const char *key, uint64_t bytes, int64_t since_ms) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "idempotency_key", json_object_new_string(key));
        json_object_object_add(o, "vram_bytes", json_object_new_int64((int64_t) bytes));
        json_object_object_add(o, "since_ms", json_object_new_int64(since_ms));
        char *value = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return value;
}

/* Create-if-absent key = value bound to lease: 1 made (and cached), 0 it was there (its range
 * in *ret_there, which may be NULL), -errno. */
static int create(struct broker *b, struct vgpu_etcd *e, const char *key, const char *value, int64_t lease,
                  struct vgpu_etcd_range *ret_there) {
        struct vgpu_error err = {};
        struct vgpu_etcd_compare cmp = { key, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0 };
        struct vgpu_etcd_op put = { VGPU_ETCD_OP_PUT, key, value, lease };
        struct vgpu_etcd_op get = { VGPU_ETCD_OP_RANGE, key };
        struct vgpu_etcd_txn_result tr = {};
        int r = vgpu_etcd_txn(e, &cmp, 1, &put, 1, &get, 1, &tr, &err);
        if (r >= 0 && tr.succeeded) {
                /* in this broker's cache at once: the holder's next retry here must find it */
                pthread_rwlock_wrlock(&b->cache.lock);
                cache_put_locked(b, key, value, tr.revision, lease);
                pthread_rwlock_unlock(&b->cache.lock);
                r = 1;
        } else if (r >= 0) {
                if (ret_there && tr.n_ranges > 0) {
                        *ret_there = tr.ranges[0];
                        tr.ranges[0] = (struct vgpu_etcd_range){};
                }
                r = 0;
        }
        vgpu_etcd_txn_result_free(&tr);
        return r;
}

/* The request waits: waits/<session> made (since now) or kept alive (since as it was). Its lease
 * and since in ret_*; 0 or -errno. */
static int wait_refresh(struct broker *b, struct vgpu_etcd *e, const char *key, uint64_t bytes,
                        int64_t *ret_lease, int64_t *ret_since) {
        struct vgpu_error err = {};
        char sid[33], wkey[VGPU_FLEET_KEY_MAX];
        vgpu_fleet_session_id(key, sid);
        key_of(b, wkey, sizeof(wkey), "waits", sid, NULL);
        int64_t lease = 0, since = 0, ttl = 0;
        pthread_rwlock_rdlock(&b->cache.lock);
        const struct entry *w = wait_of(b, key);
        if (w) {
                lease = w->lease;
                since = w->u.hold.since_ms;
        }
        pthread_rwlock_unlock(&b->cache.lock);
        for (int attempt = 0; attempt < 2; attempt++) {
                /* waiting already: the retry keeps it waiting, with its age */
                if (lease && vgpu_etcd_lease_keepalive(e, lease, &ttl, &err) >= 0 && ttl > 0) {
                        *ret_lease = lease;
                        *ret_since = since;
                        return 0;
                }
                if (vgpu_etcd_lease_grant(e, b->cfg.hold_ttl_s, &lease, &err) < 0)
                        return err.code ? err.code : -EIO;
                since = wall_ms();
                _cleanup_free_ char *value = hold_value(key, bytes, since);
                struct vgpu_etcd_range there = {};
                int r = value ? create(b, e, wkey, value, lease, &there) : -ENOMEM;
                if (r == 1) {
                        *ret_lease = lease;
                        *ret_since = since;
                        return 0;
                }
                (void) vgpu_etcd_lease_revoke(e, lease, &err);
                lease = 0;
                if (r == 0 && there.n > 0) {
                        /* another broker made it meanwhile (a retry there): that one's age */
                        lease = there.kvs[0].lease;
                        json_object *o = json_tokener_parse(there.kvs[0].value), *t;
                        if (o && json_object_object_get_ex(o, "since_ms", &t))
                                since = json_object_get_int64(t);
                        json_object_put(o);
                }
                vgpu_etcd_range_free(&there);
                if (r < 0)
                        return r;
        }
        return -EAGAIN;
}

void holds_place(struct broker *b, struct vgpu_etcd *e, const char *gpu, const char *key, uint64_t bytes) {
        int64_t lease = 0, since = 0;
        if (wait_refresh(b, e, key, bytes, &lease, &since) < 0 || !gpu[0])
                return;
        char hkey[VGPU_FLEET_KEY_MAX];
        key_of(b, hkey, sizeof(hkey), "holds", gpu, NULL);
        _cleanup_free_ char *value = hold_value(key, bytes, since);
        /* create-if-absent: a GPU holds for one request at a time; bound to the wait's lease */
        if (value && create(b, e, hkey, value, lease, NULL) == 1) {
                atomic_fetch_add(&b->holds, 1);
                broker_log(LOG_INFO, "holds %s for request %s (%llu bytes, waiting since %lld)", gpu, key,
                           (unsigned long long) bytes, (long long) since);
        }
}

void holds_drop(struct broker *b, struct vgpu_etcd *e, const char *gpu, const char *key) {
        char hkey[VGPU_FLEET_KEY_MAX];
        struct vgpu_error err = {};
        int64_t lease = 0, mod = 0, wait_lease = 0;
        key_of(b, hkey, sizeof(hkey), "holds", gpu, NULL);
        pthread_rwlock_rdlock(&b->cache.lock);
        struct entry *h = cache_get(&b->cache, hkey);
        if (h && h->valid && streq(h->u.hold.idempotency_key, key)) {
                lease = h->lease;
                mod = h->mod_revision;
        }
        const struct entry *w = wait_of(b, key);
        if (w)
                wait_lease = w->lease;
        pthread_rwlock_unlock(&b->cache.lock);
        /* placed: it waits no more; the lease takes its wait and every hold bound to it */
        if (wait_lease)
                (void) vgpu_etcd_lease_revoke(e, wait_lease, &err);
        if (!mod || lease == wait_lease)
                return;
        /* a hold of its own lease (written before waits/): only if it is still ours */
        struct vgpu_etcd_compare cmp = { hkey, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, mod };
        struct vgpu_etcd_op del = { VGPU_ETCD_OP_DELETE, hkey };
        struct vgpu_etcd_txn_result tr = {};
        if (vgpu_etcd_txn(e, &cmp, 1, &del, 1, NULL, 0, &tr, &err) >= 0 && tr.succeeded && lease)
                (void) vgpu_etcd_lease_revoke(e, lease, &err);
        vgpu_etcd_txn_result_free(&tr);
}
