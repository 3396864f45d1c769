/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * broker.h — what vgpu-broker's files share. The broker is stateless: everything it knows is a
 * cache of the cluster's etcd prefix, fed by one watch (cache.c); requests are answered from the
 * cache and change etcd only through the claim/release transactions of libvgpu (vgpu/fleet.h),
 * so any number of brokers may run side by side (doc/fleet.md).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vgpu/etcd.h"
#include "vgpu/fleet.h"

#include "place-index.h"

#define LOG_ERR   3
#define LOG_WARN  4
#define LOG_INFO  6
#define LOG_DEBUG 7
void broker_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int broker_log_level;

struct broker_config {
        char **endpoints; /* NULL-terminated */
        const char *cluster;
        const char *socket_path;
        const char *listen; /* "HOST:PORT" or NULL */
        const char *tls_cert, *tls_key, *token_file;
        const char *etcd_ca, *etcd_cert, *etcd_key, *etcd_user, *etcd_password;
        uint64_t seed;
        unsigned near_percent; /* placement's near-equal band (vgpu_fleet_policy.near_percent) */
        enum vgpu_fleet_policy_kind policy;
        int pending_timeout_s; /* a PENDING claim older than this is expired by the janitor */
        int election_ttl_s;
        int janitor_interval_ms;
        int compact_interval_s; /* the janitor compacts etcd this often (janitor.c); 0 = never */
        int tries;              /* claim attempts before 409 */
        uint64_t quota_vram_bytes;
        unsigned quota_sessions;
        int hold_ttl_s;            /* a refused large request holds a GPU this long (holds.c); 0 = never */
        const char *dashboard_dir; /* the web dashboard's static files (dashboard.c) */
        bool check_index; /* VGPU_BROKER_CHECK_INDEX=1 (tests): every indexed placement also scanned */
};

/* ---- the cache (cache.c) ---- */

enum cache_kind {
        KIND_HOST,
        KIND_GPU,
        KIND_ALLOC,
        KIND_CLAIM,
        KIND_SESSION,
        KIND_CORDON,
        KIND_QUOTA,
        KIND_HOLD,
        KIND_WAIT,
        KIND_BROKER, /* brokers/members/<id>: a live broker (janitor.c) */
        KIND_OTHER,
        _KIND_MAX
};

/* holds/<gpu> and waits/<session> (holds.c) */
struct hold {
        char *idempotency_key;
        uint64_t vram_bytes;
        int64_t since_ms; /* when the request first waited; 0 in a hold written before waits/ */
};

enum { LINK_HOST, LINK_ALLOC, LINK_CORDON, LINK_HOLD, _LINK_MAX };

/* what an entry's value decodes to, by its kind */
union entry_value {
        struct vgpu_fleet_host host;
        struct vgpu_fleet_gpu gpu;
        struct vgpu_fleet_alloc alloc;
        struct vgpu_fleet_claim claim;
        struct vgpu_fleet_session session;
        struct vgpu_fleet_cordon cordon;
        struct vgpu_fleet_quota quota;
        struct hold hold;
};

struct entry {
        struct entry *next;          /* in its hash bucket */
        struct entry *kprev, *knext; /* among the entries of its kind: cache_next() walks only those */
        char *key;                   /* the full key */
        const char *name;            /* key past "<kind>/" */
        enum cache_kind kind;
        int64_t mod_revision, create_revision, lease;
        bool valid; /* decoded; false for a tombstone (a deleted host, alloc, cordon or hold) */
        struct entry *link[_LINK_MAX]; /* a GPU's: its host's, alloc, cordon and hold entries (cache.c) */
        size_t gpu_slot;               /* a GPU's place in cache.gpus */
        struct entry *gpu_of;          /* an alloc's GPU (the one linking it): its index slot changes */
        union entry_value u;
};

struct cache {
        pthread_rwlock_t lock;
        struct entry **buckets;
        size_t n_buckets, n_entries;
        /* the GPU entries in an array too: view_build walks it, not the list, so the CPU loads
         * many GPUs' entries at once instead of one pointer after another */
        struct entry **gpus;
        size_t n_gpus, gpus_size;
        struct entry *kind_head[_KIND_MAX];
        int64_t revision;          /* applied up to */
        size_t n_valid[_KIND_MAX]; /* decoded entries per kind (tombstones not counted) */
        bool listing;              /* a relist fills the cache: no dashboard events (events.c) */
        /* placement's index over the GPUs (place-index.c): kept current by every write under the
         * write lock; requests use it under the read lock and index_lock (it builds lazily) */
        struct pindex index;
        pthread_mutex_t index_lock;
        atomic_bool ready;
        atomic_uint_least64_t relists;
};

struct broker;
int cache_init(struct cache *c);
void cache_done(struct cache *c);
/* under the write lock: a put at mod_revision (ignored when the entry is newer), a delete at revision */
/* the same from etcd's kv, its create_revision kept (the claim txn compares a GPU key's) */
void cache_put_kv_locked(struct broker *b, const struct vgpu_etcd_kv *kv);
void cache_put_locked(struct broker *b, const char *key, const char *value, int64_t mod_revision,
                      int64_t lease);
void cache_delete_locked(struct broker *b, const char *key, int64_t revision);
/* under either lock */
struct entry *cache_get(struct cache *c, const char *key);
/* the same for prefix + dir + "/" + name ("alloc", gpu) */
struct entry *cache_lookup(struct broker *b, const char *dir, const char *name);
/* a GPU entry as placement sees it, with no request's exclusions or holds; under either lock */
void cache_gpu_candidate(const struct entry *e, struct vgpu_fleet_candidate *ret);
/* every entry of a kind, under either lock: for (e = NULL; (e = cache_next(c, kind, e));) */
struct entry *cache_next(struct cache *c, enum cache_kind kind, struct entry *prev);
/* The watch thread: list, then watch; re-list on compaction; sets ready after the first list. */
void *cache_thread(void *userdata);

/* ---- the broker ---- */

struct broker {
        struct broker_config cfg;
        char prefix[VGPU_FLEET_PREFIX_MAX];
        struct vgpu_etcd_config etcd_cfg;
        struct cache cache;
        char id[40]; /* this broker's id in the election */
        char *token; /* bearer token for TCP, NULL without --token-file */
        volatile int stop;
        atomic_bool leader;

        /* a pool of etcd clients: one per request at a time (a client is not thread-safe) */
        pthread_mutex_t pool_lock;
        struct vgpu_etcd **pool;
        size_t n_pool, pool_size;

        /* counters for /metrics */
        atomic_uint_least64_t placed, replayed, no_capacity, exhausted, bad_requests, conflicts, host_gone,
                etcd_errors, released, expired, lost, holds, compactions;
        /* placements drawn from the index, not the full scan (api.c); with --check-index (tests),
         * index choices the full scan disagreed with */
        atomic_uint_least64_t indexed, index_mismatches;
        /* GPUs this broker's requests are claiming right now (api.c): a concurrent request
         * places elsewhere rather than lose the same race a round trip later */
        pthread_mutex_t inflight_lock;
        char (*inflight)[160];
        size_t n_inflight, inflight_size;

        pthread_mutex_t hist_lock;
        uint64_t hist[12]; /* placement latency buckets, see metrics.c */
        double hist_sum;
        uint64_t hist_count;
};

int broker_etcd_take(struct broker *b, struct vgpu_etcd **ret, struct vgpu_error *err);
void broker_etcd_give(struct broker *b, struct vgpu_etcd *e);
void broker_observe_latency(struct broker *b, double seconds);

/* janitor.c: the election and the janitor's rounds (expire PENDING, mark LOST) */
void *janitor_thread(void *userdata);

/* ---- the API (api.c) and its HTTP (http.c) ---- */

struct api_reply {
        unsigned status;
        char *body; /* malloc'd */
        size_t size;
        int retry_after; /* seconds; 0 = no header */
        const char *content_type;
};

struct api_request {
        const char *method, *path, *body;
        size_t body_size;
        bool local;       /* on the UNIX socket */
        long uid;         /* the peer's uid on the UNIX socket, -1 else */
        const char *peer; /* for logs */
        bool authorized;  /* passed the broker's check: on the socket, or TCP with the token if any */
};

void api_dispatch(struct broker *b, const struct api_request *req, struct api_reply *reply);
void metrics_write(struct broker *b, FILE *f);

struct http;
int http_start(struct broker *b, struct http **ret);
void http_stop(struct http *h);
