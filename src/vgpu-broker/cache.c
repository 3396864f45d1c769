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
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/hash-util.h"
#include "broker.h"
#include "dashboard.h"

void cache_gpu_candidate(const struct entry *e, struct vgpu_fleet_candidate *ret) {
        *ret = (struct vgpu_fleet_candidate){};
        if (!e->valid)
                return;
        const struct entry *h = e->link[LINK_HOST], *a = e->link[LINK_ALLOC], *co = e->link[LINK_CORDON],
                           *hold = e->link[LINK_HOLD];
        *ret = (struct vgpu_fleet_candidate){
                .gpu = &e->u.gpu,
                .alloc = a && a->valid ? &a->u.alloc : NULL,
                .host_alive = h && h->valid,
                .cordoned = co && co->valid,
                .held_bytes = hold && hold->valid ? hold->u.hold.vram_bytes : 0,
                .held_for = hold && hold->valid ? hold->u.hold.idempotency_key : NULL,
        };
}

/* the index sees no holds: placement takes the full scan while any hold exists (api.c) */
static void index_candidate(size_t slot, struct vgpu_fleet_candidate *ret, void *userdata) {
        struct cache *c = userdata;
        cache_gpu_candidate(c->gpus[slot], ret);
        ret->held_bytes = 0;
        ret->held_for = NULL;
}

int cache_init(struct cache *c) {
        *c = (struct cache){ .n_buckets = 4096 };
        if (!(c->buckets = calloc(c->n_buckets, sizeof(*c->buckets))))
                return -ENOMEM;
        pindex_init(&c->index, index_candidate, c);
        pthread_mutex_init(&c->index_lock, NULL);
        /* writers first: with glibc's default (readers first) the watch thread and a request
         * putting its own claim waited until no placement of a big fleet (milliseconds each)
         * held the lock, which with several requests in flight may be never. Nothing takes the
         * read lock twice, which this kind of lock does not allow. */
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&c->lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        return 0;
}

static void value_free(enum cache_kind kind, union entry_value *u) {
        switch (kind) {
        case KIND_HOST:
                vgpu_fleet_host_free(&u->host);
                break;
        case KIND_GPU:
                vgpu_fleet_gpu_free(&u->gpu);
                break;
        case KIND_ALLOC:
                vgpu_fleet_alloc_free(&u->alloc);
                break;
        case KIND_CLAIM:
                vgpu_fleet_claim_free(&u->claim);
                break;
        case KIND_SESSION:
                vgpu_fleet_session_free(&u->session);
                break;
        case KIND_HOLD:
        case KIND_WAIT:
                free(u->hold.idempotency_key);
                break;
        default:
                break;
        }
        memset(u, 0, sizeof(*u));
}

/* the value and what was decoded from it; the entry stays (a tombstone, or about to be refilled) */
static void entry_clear_value(struct entry *e) {
        value_free(e->kind, &e->u);
        e->valid = false;
}

static void entry_free(struct entry *e) {
        entry_clear_value(e);
        free(e->key);
        free(e);
}

static void clear_all(struct cache *c) {
        for (size_t i = 0; i < c->n_buckets; i++)
                for (struct entry *e = c->buckets[i], *next; e; e = next) {
                        next = e->next;
                        entry_free(e);
                }
        memset(c->buckets, 0, c->n_buckets * sizeof(*c->buckets));
        memset(c->kind_head, 0, sizeof(c->kind_head));
        memset(c->n_valid, 0, sizeof(c->n_valid));
        c->n_gpus = 0;
        c->n_entries = 0;
        pindex_invalidate(&c->index);
}

void cache_done(struct cache *c) {
        if (!c->buckets)
                return;
        clear_all(c);
        free(c->buckets);
        free(c->gpus);
        pindex_done(&c->index);
        pthread_mutex_destroy(&c->index_lock);
        pthread_rwlock_destroy(&c->lock);
}

static size_t hash(const char *s) {
        return (size_t) fnv1a(s);
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

struct entry *cache_lookup(struct broker *b, const char *dir, const char *name) {
        char key[VGPU_FLEET_KEY_MAX];
        size_t pl = strlen(b->prefix), dl = strlen(dir), nl = strlen(name);
        if (pl + dl + 1 + nl + 1 > sizeof(key))
                return NULL;
        /* memcpy, not snprintf: placement looks up four keys per GPU, thousands of GPUs */
        memcpy(key, b->prefix, pl);
        memcpy(key + pl, dir, dl);
        key[pl + dl] = '/';
        memcpy(key + pl + dl + 1, name, nl + 1);
        return cache_get(&b->cache, key);
}

struct entry *cache_next(struct cache *c, enum cache_kind kind, struct entry *prev) {
        struct entry *e = prev ? prev->knext : c->kind_head[kind];
        while (e && !e->valid)
                e = e->knext;
        return e;
}

static const struct {
        const char *dir;
        enum cache_kind kind;
} kinds[] = {
        { "hosts/", KIND_HOST },       { "gpus/", KIND_GPU },
        { "alloc/", KIND_ALLOC },      { "claims/", KIND_CLAIM },
        { "sessions/", KIND_SESSION }, { "cordon/", KIND_CORDON },
        { "quota/", KIND_QUOTA },      { "holds/", KIND_HOLD },
        { "waits/", KIND_WAIT },       { "brokers/members/", KIND_BROKER },
};

/* value decoded into *u (zeroed before) by the kind of entry e; false when it is not valid */
static bool decode(const struct entry *e, const char *value, union entry_value *u) {
        struct vgpu_error err = {};
        int r = 0;
        switch (e->kind) {
        case KIND_HOST:
                r = vgpu_fleet_host_from_json(value, &u->host, &err);
                break;
        case KIND_GPU:
                r = vgpu_fleet_gpu_from_json(value, &u->gpu, &err);
                break;
        case KIND_ALLOC:
                r = vgpu_fleet_alloc_from_json(value, &u->alloc, &err);
                break;
        case KIND_CLAIM:
                r = vgpu_fleet_claim_from_json(value, &u->claim, &err);
                break;
        case KIND_SESSION:
                r = vgpu_fleet_session_from_json(value, &u->session, &err);
                break;
        case KIND_CORDON:
                r = vgpu_fleet_cordon_from_json(value, &u->cordon, &err);
                break;
        case KIND_QUOTA:
                r = vgpu_fleet_quota_from_json(value, &u->quota, &err);
                break;
        case KIND_HOLD:
        case KIND_WAIT: {
                /* holds/<gpu>, waits/<session>: {"idempotency_key","vram_bytes","since_ms"} (holds.c) */
                json_object *o = json_tokener_parse(value), *k, *v, *t;
                bool ok = o && json_object_object_get_ex(o, "idempotency_key", &k) &&
                          json_object_is_type(k, json_type_string) &&
                          json_object_object_get_ex(o, "vram_bytes", &v) &&
                          json_object_is_type(v, json_type_int);
                if (ok) {
                        u->hold.idempotency_key = strdup(json_object_get_string(k));
                        u->hold.vram_bytes = (uint64_t) json_object_get_int64(v);
                        if (json_object_object_get_ex(o, "since_ms", &t) &&
                            json_object_is_type(t, json_type_int))
                                u->hold.since_ms = json_object_get_int64(t);
                }
                json_object_put(o);
                return ok && u->hold.idempotency_key;
        }
        case KIND_BROKER:
                return true; /* the name is all there is to it */
        default:
                return false;
        }
        if (r < 0)
                broker_log(LOG_WARN, "%s: ignored: %s", e->key, err.message);
        return r >= 0;
}

/* Kept as tombstones when deleted, and updated in place: GPU entries point at them (links). */
static bool linkable(enum cache_kind k) {
        return k == KIND_HOST || k == KIND_ALLOC || k == KIND_CORDON || k == KIND_HOLD;
}

static enum cache_kind kind_of(const char *name, const char **ret_rest) {
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (strncmp(name, kinds[i].dir, strlen(kinds[i].dir)) == 0) {
                        *ret_rest = name + strlen(kinds[i].dir);
                        return kinds[i].kind;
                }
        *ret_rest = name;
        return KIND_OTHER;
}

/* A new entry for key (not in the table), invalid until a value is decoded into it. */
static struct entry *entry_insert(struct broker *b, const char *key) {
        struct cache *c = &b->cache;
        struct entry *e = calloc(1, sizeof(*e));
        if (!e || !(e->key = strdup(key))) {
                free(e);
                return NULL;
        }
        e->kind = kind_of(e->key + strlen(b->prefix), &e->name);
        if (e->kind == KIND_GPU) {
                if (c->n_gpus == c->gpus_size) {
                        size_t n = c->gpus_size ? 2 * c->gpus_size : 256;
                        struct entry **ng = realloc(c->gpus, n * sizeof(*ng));
                        if (!ng) {
                                free(e->key);
                                free(e);
                                return NULL;
                        }
                        c->gpus = ng;
                        c->gpus_size = n;
                }
                e->gpu_slot = c->n_gpus;
                c->gpus[c->n_gpus++] = e;
                pindex_add_slot(&c->index);
        }
        e->knext = c->kind_head[e->kind];
        if (e->knext)
                e->knext->kprev = e;
        c->kind_head[e->kind] = e;
        size_t h = hash(key) % c->n_buckets;
        e->next = c->buckets[h];
        c->buckets[h] = e;
        if (++c->n_entries > c->n_buckets * 2)
                grow(c);
        return e;
}

/* The entry of prefix + dir + "/" + name, a tombstone made for it when there is none. */
static struct entry *link_to(struct broker *b, const char *dir, const char *name) {
        struct entry *e = cache_lookup(b, dir, name);
        if (e)
                return e;
        char key[VGPU_FLEET_KEY_MAX];
        if (vgpu_fleet_key(key, sizeof(key), b->prefix, dir, name, NULL) < 0)
                return NULL;
        return entry_insert(b, key);
}

/* What placement's index must redo after entry e changed: the slot of the GPU itself or of the
 * GPU of an allocation (the claims of a placement); the slots of a host's GPUs for its host or
 * cordon key (found by their links: a pass over pointers, not a rebuild of every slot). */
static void index_changed(struct cache *c, const struct entry *e) {
        switch (e->kind) {
        case KIND_GPU:
                pindex_update(&c->index, e->gpu_slot);
                break;
        case KIND_ALLOC:
                if (e->gpu_of)
                        pindex_update(&c->index, e->gpu_of->gpu_slot);
                break;
        case KIND_HOST:
        case KIND_CORDON: {
                int link = e->kind == KIND_HOST ? LINK_HOST : LINK_CORDON;
                if (!pindex_live(&c->index)) /* a relist: rebuilt anyway */
                        break;
                for (size_t s = 0; s < c->n_gpus; s++)
                        if (c->gpus[s]->link[link] == e)
                                pindex_update(&c->index, s);
                break;
        }
        default:
                break;
        }
}

static void put(struct broker *b, const char *key, const char *value, int64_t mod_revision,
                int64_t create_revision, int64_t lease) {
        struct cache *c = &b->cache;
        if (strncmp(key, b->prefix, strlen(b->prefix)) != 0)
                return;
        struct entry *e = cache_get(c, key);
        if (e && e->mod_revision >= mod_revision)
                return;
        bool fresh = !e;
        if (!e && !(e = entry_insert(b, key))) {
                broker_log(LOG_ERR, "out of memory caching %s", key);
                return;
        }
        /* only what was decoded is kept, not the JSON text: nothing reads it again, and at
         * 8,000 GPUs the texts were ~7 MB, interleaved with the decoded fields every placement
         * reads */
        union entry_value nv = {};
        bool valid = decode(e, value ? value : "", &nv);
        if (valid && !c->listing)
                events_put(b, e, &nv, mod_revision); /* the dashboard's: old value against new */
        if (e->valid)
                c->n_valid[e->kind]--;
        entry_clear_value(e);
        e->mod_revision = mod_revision;
        e->create_revision = create_revision;
        e->lease = lease;
        e->u = nv;
        e->valid = valid;
        if (e->valid)
                c->n_valid[e->kind]++;
        /* a GPU finds its host, alloc, cordon and hold once, not four lookups per placement */
        if (e->kind == KIND_GPU && e->valid && (fresh || !e->link[LINK_HOST])) {
                e->link[LINK_HOST] = link_to(b, "hosts", e->u.gpu.host);
                e->link[LINK_ALLOC] = link_to(b, "alloc", e->u.gpu.gpu);
                e->link[LINK_CORDON] = link_to(b, "cordon", e->u.gpu.host);
                e->link[LINK_HOLD] = link_to(b, "holds", e->u.gpu.gpu);
                if (e->link[LINK_ALLOC])
                        e->link[LINK_ALLOC]->gpu_of = e;
        }
        index_changed(c, e);
}

void cache_put_locked(struct broker *b, const char *key, const char *value, int64_t mod_revision,
                      int64_t lease) {
        put(b, key, value, mod_revision, 0, lease);
}

void cache_put_kv_locked(struct broker *b, const struct vgpu_etcd_kv *kv) {
        put(b, kv->key, kv->value, kv->mod_revision, kv->create_revision, kv->lease);
}

void cache_delete_locked(struct broker *b, const char *key, int64_t revision) {
        struct cache *c = &b->cache;
        struct entry **pp = &c->buckets[hash(key) % c->n_buckets];
        for (; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->key, key) == 0) {
                        struct entry *e = *pp;
                        if (e->mod_revision >= revision)
                                return;
                        events_delete(b, e, revision);
                        if (e->valid)
                                c->n_valid[e->kind]--;
                        if (linkable(e->kind)) {
                                /* GPUs point at it: a tombstone that remembers when it went */
                                entry_clear_value(e);
                                e->mod_revision = revision;
                                index_changed(c, e);
                                return;
                        }
                        *pp = e->next;
                        if (e->kind == KIND_GPU) { /* the last one takes its slot */
                                c->gpus[e->gpu_slot] = c->gpus[--c->n_gpus];
                                c->gpus[e->gpu_slot]->gpu_slot = e->gpu_slot;
                                if (e->link[LINK_ALLOC] && e->link[LINK_ALLOC]->gpu_of == e)
                                        e->link[LINK_ALLOC]->gpu_of = NULL;
                                pindex_remove_slot(&c->index, e->gpu_slot);
                        }
                        if (e->kprev)
                                e->kprev->knext = e->knext;
                        else
                                c->kind_head[e->kind] = e->knext;
                        if (e->knext)
                                e->knext->kprev = e->kprev;
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
                        cache_put_kv_locked(b, &ev[i].kv);
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
        b->cache.listing = true; /* what is there, not what changed: no dashboard events */
        for (size_t i = 0; i < r.n; i++)
                cache_put_kv_locked(b, &r.kvs[i]);
        b->cache.listing = false;
        b->cache.revision = r.revision;
        pthread_rwlock_unlock(&b->cache.lock);
        atomic_fetch_add(&b->cache.relists, 1);
        broker_log(LOG_INFO, "listed %zu keys of %s at revision %lld", r.n, b->prefix,
                   (long long) r.revision);
        *ret_revision = r.revision;
        vgpu_etcd_range_free(&r);
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
                        /* the listing's response (tens of MB for a big fleet) is freed: give its
                         * pages back, once ready (at 1,000 x 8 GPUs RSS 50 -> 33 MB) */
                        malloc_trim(0);
                }
                int64_t compact = 0;
                /* no prev_kv: the cache has every previous value (events.c compares with it) */
                int r = vgpu_etcd_watch_flags(e, b->prefix, rev + 1, VGPU_ETCD_WATCH_NO_PREV_KV, on_events, b,
                                              &b->stop, &compact, &err);
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
