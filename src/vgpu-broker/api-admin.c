/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api-admin.c — the broker's read endpoints (hosts, GPUs, sessions: from the cache), cordon,
 * uncordon and drain (etcd writes), and the placement explanation (no claim).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api-util.h"

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_int(json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
}

static void add_bool(json_object *o, const char *k, bool v) {
        json_object_object_add(o, k, json_object_new_boolean(v));
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(json_object_get_string(json_object_object_get(*(json_object *const *) a, "sort")),
                      json_object_get_string(json_object_object_get(*(json_object *const *) b, "sort")));
}

/* Sort the array by each member's "sort" string, then drop that member. */
static json_object *sorted(json_object *a) {
        json_object_array_sort(a, cmp_str);
        for (size_t i = 0; i < json_object_array_length(a); i++)
                json_object_object_del(json_object_array_get_idx(a, i), "sort");
        return a;
}

struct host_row {
        const char *host;
        struct entry *alive, *cordon;
        uint64_t total, claimed;
        unsigned gpus, sessions;
};

static int row_cmp(const void *x, const void *y) {
        return strcmp(((const struct host_row *) x)->host, ((const struct host_row *) y)->host);
}

void api_hosts(struct broker *b, struct api_reply *reply) {
        struct host_row *rows = NULL;
        size_t n = 0, cap = 0;
        pthread_rwlock_rdlock(&b->cache.lock);
        /* every host alive, and every cordoned one even when it is not */
        for (int pass = 0; pass < 2; pass++)
                for (struct entry *e = NULL;
                     (e = cache_next(&b->cache, pass ? KIND_CORDON : KIND_HOST, e));) {
                        struct entry *h = cache_lookup(b, "hosts", e->name);
                        if (pass && h && h->valid)
                                continue;
                        if (n == cap) {
                                cap = cap ? 2 * cap : 64;
                                struct host_row *nr = realloc(rows, cap * sizeof(*nr));
                                if (!nr)
                                        break;
                                rows = nr;
                        }
                        rows[n++] = (struct host_row){ .host = e->name,
                                                       .alive = h && h->valid ? h : NULL,
                                                       .cordon = cache_lookup(b, "cordon", e->name) };
                }
        if (n > 0) /* NULL with 0 elements is undefined for qsort and bsearch */
                qsort(rows, n, sizeof(*rows), row_cmp);
        /* one pass over the GPUs, each added to its host's row (binary search by name) */
        for (struct entry *g = NULL; (g = cache_next(&b->cache, KIND_GPU, g));) {
                struct host_row key = { .host = g->u.gpu.host };
                struct host_row *r = n ? bsearch(&key, rows, n, sizeof(*rows), row_cmp) : NULL;
                if (!r)
                        continue;
                r->gpus++;
                r->total += g->u.gpu.vram_total_bytes;
                struct entry *al = cache_lookup(b, "alloc", g->u.gpu.gpu);
                if (al && al->valid) {
                        r->claimed += al->u.alloc.vram_bytes;
                        r->sessions += (unsigned) al->u.alloc.n_claims;
                }
        }
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                const struct host_row *r = &rows[i];
                struct entry *co = r->cordon;
                json_object *o = json_object_new_object();
                add_str(o, "host", r->host);
                add_str(o, "address", r->alive ? r->alive->u.host.address : NULL);
                add_bool(o, "alive", r->alive != NULL);
                add_bool(o, "cordoned", co && co->valid);
                add_bool(o, "draining", co && co->valid && co->u.cordon.draining);
                add_int(o, "gpus_total", r->gpus);
                add_int(o, "sessions", r->sessions);
                add_int(o, "vram_total_bytes", (int64_t) r->total);
                add_int(o, "vram_claimed_bytes", (int64_t) r->claimed);
                add_str(o, "version", r->alive ? r->alive->u.host.version : NULL);
                json_object_array_add(a, o);
        }
        pthread_rwlock_unlock(&b->cache.lock);
        free(rows);
        reply_json(reply, 200, a);
}

void api_gpus(struct broker *b, struct api_reply *reply) {
        json_object *a = json_object_new_array();
        char key[VGPU_FLEET_KEY_MAX], sort[400];
        pthread_rwlock_rdlock(&b->cache.lock);
        for (struct entry *e = NULL; (e = cache_next(&b->cache, KIND_GPU, e));) {
                const struct vgpu_fleet_gpu *g = &e->u.gpu;
                key_of(b, key, sizeof(key), "alloc", g->gpu, NULL);
                struct entry *al = cache_get(&b->cache, key);
                const struct vgpu_fleet_alloc *ac = al && al->valid ? &al->u.alloc : NULL;
                json_object *o = json_object_new_object();
                snprintf(sort, sizeof(sort), "%s/%s", g->host, g->gpu);
                add_str(o, "sort", sort);
                add_str(o, "host", g->host);
                add_str(o, "gpu", g->gpu);
                add_str(o, "pci_address", g->pci_address);
                add_str(o, "model", g->model);
                add_str(o, "mode", vgpu_fleet_mode_to_string(g->mode));
                add_bool(o, "degraded", g->degraded);
                add_int(o, "vram_total_bytes", (int64_t) g->vram_total_bytes);
                add_int(o, "vram_claimed_bytes", ac ? (int64_t) ac->vram_bytes : 0);
                add_int(o, "vram_used_bytes", (int64_t) g->vram_used_bytes); /* as the host reports */
                json_object *why = json_object_new_array();
                for (size_t i = 0; i < g->n_health_reasons; i++)
                        json_object_array_add(why, json_object_new_string(g->health_reasons[i]));
                json_object_object_add(o, "health_reasons", why);
                add_str(o, "type_lock", ac && ac->n_claims ? ac->type_lock : NULL);
                add_int(o, "sessions", ac ? (int64_t) ac->n_claims : 0);
                json_object_object_add(o, "temperature_celsius",
                                       g->has_temperature ? json_object_new_int(g->temperature_celsius)
                                                          : NULL);
                json_object_array_add(a, o);
        }
        pthread_rwlock_unlock(&b->cache.lock);
        reply_json(reply, 200, sorted(a));
}

void api_sessions(struct broker *b, struct api_reply *reply) {
        json_object *a = json_object_new_array();
        pthread_rwlock_rdlock(&b->cache.lock);
        for (struct entry *e = NULL; (e = cache_next(&b->cache, KIND_SESSION, e));) {
                const char *ck = e->u.session.claim_key;
                struct entry *c = ck[0] == '/'                     ? cache_get(&b->cache, ck)
                                  : strncmp(ck, "claims/", 7) == 0 ? cache_lookup(b, "claims", ck + 7)
                                                                   : NULL;
                json_object *o = session_json(&e->u.session, c && c->valid ? &c->u.claim : NULL);
                add_str(o, "sort", e->u.session.session);
                json_object_array_add(a, o);
        }
        pthread_rwlock_unlock(&b->cache.lock);
        reply_json(reply, 200, sorted(a));
}

void api_cordon(struct broker *b, const char *host, const char *verb, struct api_reply *reply) {
        struct vgpu_error err = {};
        struct vgpu_etcd *e = NULL;
        char key[VGPU_FLEET_KEY_MAX];
        int r;
        if (broker_etcd_take(b, &e, &err) < 0) {
                reply->retry_after = 1;
                return reply_error(reply, 503, "etcd: %s", err.message);
        }
        key_of(b, key, sizeof(key), "cordon", host, NULL);
        bool drain = strcmp(verb, "drain") == 0;
        unsigned released = 0;
        if (strcmp(verb, "uncordon") == 0)
                r = vgpu_etcd_delete(e, key, false, NULL, &err);
        else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                struct vgpu_fleet_cordon c = { .draining = drain,
                                               .since_ms = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 };
                _cleanup_free_ char *json = NULL;
                r = vgpu_fleet_cordon_to_json(&c, &json, &err);
                if (r >= 0)
                        r = vgpu_etcd_put(e, key, json, 0, NULL, &err);
        }
        if (r >= 0 && drain) {
                /* every session on the host released (BOUND ones are torn down by its vgpud) */
                char prefix[VGPU_FLEET_KEY_MAX];
                struct vgpu_etcd_range rg = {};
                key_of(b, prefix, sizeof(prefix), "claims", host, NULL);
                strncat(prefix, "/", sizeof(prefix) - strlen(prefix) - 1);
                r = vgpu_etcd_range_prefix(e, prefix, 0, 0, &rg, &err);
                for (size_t i = 0; r >= 0 && i < rg.n; i++) {
                        enum vgpu_fleet_release_outcome o;
                        r = vgpu_fleet_release_claim(e, b->prefix, rg.kvs[i].key, false, -1, &o, &err);
                        released += r >= 0 && o != VGPU_FLEET_RELEASE_ABSENT;
                }
                vgpu_etcd_range_free(&rg);
        }
        broker_etcd_give(b, e);
        if (r < 0) {
                reply->retry_after = 1;
                return reply_error(reply, 503, "%s %s: %s", verb, host, err.message);
        }
        json_object *o = json_object_new_object();
        add_str(o, "host", host);
        add_bool(o, "cordoned", strcmp(verb, "uncordon") != 0);
        add_bool(o, "draining", drain);
        add_int(o, "released", released);
        reply_json(reply, 200, o);
}

void api_explain(struct broker *b, const struct api_request *req, struct api_reply *reply) {
        struct place_body body;
        if (place_body_parse(req, false, &body, reply) < 0)
                return;
        bool quotas = b->cfg.quota_vram_bytes || b->cfg.quota_sessions;
        struct vgpu_fleet_policy policy = { .policy = b->cfg.policy,
                                            .seed = b->cfg.seed,
                                            .near_percent = b->cfg.near_percent,
                                            .quota_vram_bytes = b->cfg.quota_vram_bytes,
                                            .quota_sessions = b->cfg.quota_sessions };
        struct view v;
        struct vgpu_fleet_placement p = {};
        struct vgpu_error err = {};
        json_object *o = NULL;
        pthread_rwlock_rdlock(&b->cache.lock);
        policy_share(b, &policy);
        int r = view_build(b, quotas ? body.req.tenant : NULL, NULL, 0, &v);
        if (r >= 0)
                holds_order(b, &body.req, &v); /* as the placement would see them */
        if (r >= 0 &&
            (r = vgpu_fleet_place(v.c, v.n, &body.req, &policy, quotas ? &v.usage : NULL, &p, &err)) >= 0) {
                o = json_object_new_object();
                add_int(o, "candidates", (int64_t) v.n);
                json_object_object_add(o, "rejected", rejected_json(&p));
                add_int(o, "tied", (int64_t) p.n_tied);
                add_int(o, "near_equal_percent", (int64_t) policy.near_percent);
                add_int(o, "brokers", (int64_t) policy.n_shares);
                add_str(o, "policy", b->cfg.policy == VGPU_FLEET_BINPACK ? "binpack" : "spread");
                json_object *fits = json_object_new_array();
                for (size_t i = 0; i < p.n_fits && i < 20; i++) {
                        const struct vgpu_fleet_fit *f = &p.fits[i];
                        const struct vgpu_fleet_gpu *g = v.c[f->index].gpu;
                        json_object *x = json_object_new_object();
                        add_str(x, "host", g->host);
                        add_str(x, "gpu", g->gpu);
                        add_str(x, "model", g->model);
                        add_str(x, "kind", vgpu_fleet_kind_to_string(f->kind));
                        add_str(x, "type", f->type);
                        add_int(x, "vram_bytes", (int64_t) f->vram_bytes);
                        add_int(x, "utilization_after_percent",
                                (int64_t) (f->utilization_after * 100.0 + 0.5));
                        add_int(x, "preference", f->preference);
                        add_int(x, "sessions", f->sessions);
                        json_object_array_add(fits, x);
                }
                json_object_object_add(o, "fits", fits);
        }
        pthread_rwlock_unlock(&b->cache.lock);
        vgpu_fleet_placement_free(&p);
        view_done(&v);
        place_body_done(&body);
        if (r < 0)
                return reply_error(reply, r == -EINVAL ? 400 : 500, "%s", err.message);
        reply_json(reply, 200, o);
}
