/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cache.c — the broker's view of the fleet: every key under the cluster prefix, decoded, kept
 * fresh by one watch. Start: range the prefix at revision R, watch from R + 1; ready after the
 * first list. A compacted start revision means events were lost: list again and swap. A lost
 * connection resumes from the last revision applied + 1 (etcd replays what was missed).
 *
 * Request threads read under the read lock; the watch thread and the broker's own writes (a
 * claim it just made, the fresh alloc a lost txn returned) write under the write lock. A put
 * older than what is cached is ignored and a delete removes only what it is newer than, so the
 * broker's own writes and the watch's replay of them can arrive in either order.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

int cache_init(struct cache *c) {
        *c = (struct cache){ .n_buckets = 4096 };
        if (!(c->buckets = calloc(c->n_buckets, sizeof(*c->buckets))))
                return -ENOMEM;
        pthread_rwlock_init(&c->lock, NULL);
        return 0;
}

static void entry_free(struct entry *e) {
        switch (e->kind) {
        case KIND_HOST:
                vgpu_fleet_host_clear(&e->u.host);
                break;
        case KIND_GPU:
                vgpu_fleet_gpu_clear(&e->u.gpu);
                break;
        case KIND_ALLOC:
                vgpu_fleet_alloc_clear(&e->u.alloc);
                break;
        case KIND_CLAIM:
                vgpu_fleet_claim_clear(&e->u.claim);
                break;
        case KIND_SESSION:
                vgpu_fleet_session_clear(&e->u.session);
                break;
        case KIND_HOLD:
                free(e->u.hold.idempotency_key);
                break;
        default:
                break;
        }
        free(e->key);
        free(e->value);
        free(e);
}

static void clear_all(struct cache *c) {
        for (size_t i = 0; i < c->n_buckets; i++)
                for (struct entry *e = c->buckets[i], *next; e; e = next) {
                        next = e->next;
                        entry_free(e);
                }
        memset(c->buckets, 0, c->n_buckets * sizeof(*c->buckets));
        c->n_entries = 0;
}

void cache_done(struct cache *c) {
        if (!c->buckets)
                return;
        clear_all(c);
        free(c->buckets);
        pthread_rwlock_destroy(&c->lock);
}

static size_t hash(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * UINT64_C(0x100000001b3);
        return (size_t) h;
}

static void grow(struct cache *c) {
        size_t n = c->n_buckets * 4;
        struct entry **nb = calloc(n, sizeof(*nb));
        if (!nb)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < c->n_buckets; i++)
                for (struct entry *e = c->buckets[i], *next; e; e = next) {
                        next = e->next;
                        size_t h = hash(e->key) % n;
                        e->next = nb[h];
                        nb[h] = e;
                }
        free(c->buckets);
        c->buckets = nb;
        c->n_buckets = n;
}

struct entry *cache_get(struct cache *c, const char *key) {
        for (struct entry *e = c->buckets[hash(key) % c->n_buckets]; e; e = e->next)
                if (strcmp(e->key, key) == 0)
                        return e;
        return NULL;
}

struct entry *cache_next(struct cache *c, enum cache_kind kind, struct entry *prev) {
        size_t i = prev ? hash(prev->key) % c->n_buckets : 0;
        struct entry *e = prev ? prev->next : c->buckets[0];
        for (;;) {
                for (; e; e = e->next)
                        if (e->kind == kind && e->valid)
                                return e;
                if (++i >= c->n_buckets)
                        return NULL;
                e = c->buckets[i];
        }
}

static const struct {
        const char *dir;
        enum cache_kind kind;
} kinds[] = {
        { "hosts/", KIND_HOST },   { "gpus/", KIND_GPU },         { "alloc/", KIND_ALLOC },
        { "claims/", KIND_CLAIM }, { "sessions/", KIND_SESSION }, { "cordon/", KIND_CORDON },
        { "quota/", KIND_QUOTA },  { "holds/", KIND_HOLD },
};

static bool decode(struct broker *b, struct entry *e) {
        struct vgpu_error err = {};
        int r = 0;
        switch (e->kind) {
        case KIND_HOST:
                r = vgpu_fleet_host_from_json(e->value, &e->u.host, &err);
                break;
        case KIND_GPU:
                r = vgpu_fleet_gpu_from_json(e->value, &e->u.gpu, &err);
                break;
        case KIND_ALLOC:
                r = vgpu_fleet_alloc_from_json(e->value, &e->u.alloc, &err);
                break;
        case KIND_CLAIM:
                r = vgpu_fleet_claim_from_json(e->value, &e->u.claim, &err);
                break;
        case KIND_SESSION:
                r = vgpu_fleet_session_from_json(e->value, &e->u.session, &err);
                break;
        case KIND_CORDON:
                r = vgpu_fleet_cordon_from_json(e->value, &e->u.cordon, &err);
                break;
        case KIND_QUOTA:
                r = vgpu_fleet_quota_from_json(e->value, &e->u.quota, &err);
                break;
        case KIND_HOLD: {
                /* holds/<gpu>: {"idempotency_key","vram_bytes"} (api.c: ageing) */
                json_object *o = json_tokener_parse(e->value), *k, *v;
                bool ok = o && json_object_object_get_ex(o, "idempotency_key", &k) &&
                          json_object_is_type(k, json_type_string) &&
                          json_object_object_get_ex(o, "vram_bytes", &v) &&
                          json_object_is_type(v, json_type_int);
                if (ok) {
                        e->u.hold.idempotency_key = strdup(json_object_get_string(k));
                        e->u.hold.vram_bytes = (uint64_t) json_object_get_int64(v);
                }
                json_object_put(o);
                return ok && e->u.hold.idempotency_key;
        }
        default:
                return false;
        }
        if (r < 0)
                broker_log(LOG_WARN, "%s: ignored: %s", e->key, err.message);
        (void) b;
        return r >= 0;
}

void cache_put_locked(struct broker *b, const char *key, const char *value, int64_t mod_revision,
                      int64_t lease) {
        struct cache *c = &b->cache;
        size_t plen = strlen(b->prefix);
        if (strncmp(key, b->prefix, plen) != 0)
                return;
        struct entry *old = cache_get(c, key);
        if (old && old->mod_revision >= mod_revision)
                return;
        struct entry *e = calloc(1, sizeof(*e));
        if (!e || !(e->key = strdup(key)) || !(e->value = strdup(value ? value : ""))) {
                if (e)
                        free(e->key);
                free(e);
                broker_log(LOG_ERR, "out of memory caching %s", key);
                return;
        }
        e->kind = KIND_OTHER;
        e->name = e->key + plen;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (strncmp(e->name, kinds[i].dir, strlen(kinds[i].dir)) == 0) {
                        e->kind = kinds[i].kind;
                        e->name += strlen(kinds[i].dir);
                        break;
                }
        e->mod_revision = mod_revision;
        e->lease = lease;
        e->valid = decode(b, e);
        size_t h = hash(key) % c->n_buckets;
        if (old) {
                struct entry **pp = &c->buckets[h];
                while (*pp != old)
                        pp = &(*pp)->next;
                *pp = old->next;
                entry_free(old);
                c->n_entries--;
        }
        e->next = c->buckets[h];
        c->buckets[h] = e;
        if (++c->n_entries > c->n_buckets * 2)
                grow(c);
}

void cache_delete_locked(struct broker *b, const char *key, int64_t revision) {
        struct cache *c = &b->cache;
        struct entry **pp = &c->buckets[hash(key) % c->n_buckets];
        for (; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->key, key) == 0) {
                        struct entry *e = *pp;
                        if (e->mod_revision >= revision)
                                return;
                        *pp = e->next;
                        entry_free(e);
                        c->n_entries--;
                        return;
                }
}

static int on_events(const struct vgpu_etcd_event *ev, size_t n, int64_t revision, void *userdata) {
        struct broker *b = userdata;
        pthread_rwlock_wrlock(&b->cache.lock);
        for (size_t i = 0; i < n; i++)
                if (ev[i].deleted)
                        cache_delete_locked(b, ev[i].kv.key, ev[i].kv.mod_revision ?: revision);
                else
                        cache_put_locked(b, ev[i].kv.key, ev[i].kv.value, ev[i].kv.mod_revision,
                                         ev[i].kv.lease);
        if (revision > b->cache.revision)
                b->cache.revision = revision;
        pthread_rwlock_unlock(&b->cache.lock);
        return 0;
}

/* List the prefix into a fresh cache; the revision listed at in *ret_revision. */
static int relist(struct broker *b, struct vgpu_etcd *e, int64_t *ret_revision) {
        struct vgpu_etcd_range r = {};
        struct vgpu_error err = {};
        int k = vgpu_etcd_range_prefix(e, b->prefix, 0, 0, &r, &err);
        if (k < 0) {
                broker_log(LOG_WARN, "listing %s: %s", b->prefix, err.message);
                return k;
        }
        pthread_rwlock_wrlock(&b->cache.lock);
        clear_all(&b->cache);
        for (size_t i = 0; i < r.n; i++)
                cache_put_locked(b, r.kvs[i].key, r.kvs[i].value, r.kvs[i].mod_revision, r.kvs[i].lease);
        b->cache.revision = r.revision;
        pthread_rwlock_unlock(&b->cache.lock);
        atomic_fetch_add(&b->cache.relists, 1);
        broker_log(LOG_INFO, "listed %zu keys of %s at revision %lld", r.n, b->prefix,
                   (long long) r.revision);
        *ret_revision = r.revision;
        vgpu_etcd_range_clear(&r);
        return 0;
}

static void nap(struct broker *b, int ms) {
        for (int i = 0; i < ms / 50 && !b->stop; i++)
                usleep(50000);
}

void *cache_thread(void *userdata) {
        struct broker *b = userdata;
        struct vgpu_etcd *e = NULL;
        struct vgpu_error err = {};
        bool listed = false;
        int64_t rev = 0;
        while (!b->stop) {
                if (!e && vgpu_etcd_new(&b->etcd_cfg, &e, &err) < 0) {
                        broker_log(LOG_ERR, "etcd client: %s", err.message);
                        nap(b, 500);
                        continue;
                }
                if (!listed) {
                        if (relist(b, e, &rev) < 0) {
                                nap(b, 200);
                                continue;
                        }
                        listed = true;
                        atomic_store(&b->cache.ready, true);
                }
                int64_t compact = 0;
                int r = vgpu_etcd_watch(e, b->prefix, rev + 1, on_events, b, &b->stop, &compact, &err);
                if (b->stop)
                        break;
                pthread_rwlock_rdlock(&b->cache.lock);
                rev = b->cache.revision;
                pthread_rwlock_unlock(&b->cache.lock);
                if (r == -ESTALE) {
                        broker_log(LOG_INFO, "watch from %lld: compacted at %lld, listing again",
                                   (long long) rev + 1, (long long) compact);
                        listed = false;
                        continue;
                }
                if (r < 0) {
                        broker_log(LOG_WARN, "watch: %s; resuming from %lld", err.message,
                                   (long long) rev + 1);
                        nap(b, 100);
                }
        }
        vgpu_etcd_free(e);
        return NULL;
}
