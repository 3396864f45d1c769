/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api.c — the broker's HTTP/JSON API (doc/fleet.md, "API"): routing, sessions (place, show,
 * release), health. Placement reads the cache; the claim is libvgpu's txn; a lost race
 * refreshes the cache from the txn's failure branch and places again, at most cfg.tries times
 * (then 409). No GPU passes the filters: 503 with the count each filter rejected and
 * Retry-After. A retried request (same idempotency key) finds its session and gets it back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api-util.h"
#include "dashboard.h"

void reply_json(struct api_reply *r, unsigned status, json_object *o) {
        const char *s =
                o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                  : NULL;
        r->status = s ? status : 500;
        r->body = s ? strdup(s) : strdup("{\"error\":\"out of memory\"}");
        r->size = r->body ? strlen(r->body) : 0;
        json_object_put(o);
}

void reply_error(struct api_reply *r, unsigned status, const char *fmt, ...) {
        char msg[1200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(msg));
        reply_json(r, status, o);
}

void key_of(struct broker *b, char *buf, size_t size, const char *dir, const char *a, const char *c) {
        (void) vgpu_fleet_key(buf, size, b->prefix, dir, a, c, NULL);
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- the request body ---- */

static int field_error(struct api_reply *reply, const char *field, const char *expected) {
        reply_error(reply, 400, "%s: expected %s", field, expected);
        return -EINVAL;
}

static int str_list(json_object *o, const char *field, const char **out, size_t *n_out,
                    struct api_reply *reply) {
        json_object *v;
        if (!json_object_object_get_ex(o, field, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 32)
                return field_error(reply, field, "an array of at most 32 strings");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *s = json_object_array_get_idx(v, i);
                if (!json_object_is_type(s, json_type_string) || json_object_get_string_len(s) == 0)
                        return field_error(reply, field, "an array of non-empty strings");
                out[(*n_out)++] = json_object_get_string(s);
        }
        return 0;
}

static const char *str_field(json_object *o, const char *field, bool *bad) {
        json_object *v;
        if (!json_object_object_get_ex(o, field, &v) || json_object_is_type(v, json_type_null))
                return NULL;
        if (!json_object_is_type(v, json_type_string)) {
                *bad = true;
                return NULL;
        }
        return json_object_get_string(v);
}

static int size_field(json_object *o, const char *field, uint64_t max, bool *present, uint64_t *out,
                      struct api_reply *reply) {
        json_object *v;
        *present = json_object_object_get_ex(o, field, &v) && !json_object_is_type(v, json_type_null);
        if (!*present)
                return 0;
        int64_t x = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
        if (x <= 0 || (uint64_t) x > max)
                return field_error(reply, field,
                                   max == 100 ? "an integer from 1 to 100" : "a positive integer");
        *out = (uint64_t) x;
        return 0;
}

void place_body_done(struct place_body *p) {
        json_object_put(p->o);
        p->o = NULL;
}

int place_body_parse(const struct api_request *req, bool need_key, struct place_body *p,
                     struct api_reply *reply) {
        static const char *const known[] = { "user",         "tenant",         "vram_bytes", "type",
                                             "memory_bytes", "share_percent",  "models",     "prefer",
                                             "domain",       "idempotency_key" };
        *p = (struct place_body){};
        struct json_tokener *tok = json_tokener_new();
        p->o = tok ? json_tokener_parse_ex(tok, req->body, (int) req->body_size) : NULL;
        bool complete = tok && json_tokener_get_error(tok) == json_tokener_success;
        json_tokener_free(tok);
        if (!p->o || !complete || !json_object_is_type(p->o, json_type_object)) {
                place_body_done(p);
                reply_error(reply, 400, "body: expected a JSON object");
                return -EINVAL;
        }
        json_object_object_foreach (p->o, member, val) {
                (void) val;
                bool ok = false;
                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        ok = ok || strcmp(member, known[i]) == 0;
                if (!ok) {
                        reply_error(reply, 400,
                                    "%s: unknown member (see doc/schema/broker-place.schema.json)", member);
                        place_body_done(p);
                        return -EINVAL;
                }
        }
        struct vgpu_fleet_request *r = &p->req;
        bool bad = false, has_vram, has_mem, has_share;
        uint64_t share = 0;
        int k = 0;
        r->user = str_field(p->o, "user", &bad);
        if (bad)
                k = field_error(reply, "user", "a string");
        r->tenant = k ? NULL : str_field(p->o, "tenant", &bad);
        if (!k && (bad || (r->tenant && !vgpu_fleet_name_is_valid(r->tenant))))
                k = field_error(reply, "tenant", "a name of letters, digits, '.', '_', ':' and '-'");
        r->type = k ? NULL : str_field(p->o, "type", &bad);
        if (!k && (bad || (r->type && !*r->type)))
                k = field_error(reply, "type", "a vGPU type name");
        r->domain = k ? NULL : str_field(p->o, "domain", &bad);
        if (!k && (bad || (r->domain && !*r->domain)))
                k = field_error(reply, "domain", "a libvirt domain name");
        r->idempotency_key = k ? NULL : str_field(p->o, "idempotency_key", &bad);
        if (!k &&
            (bad || (r->idempotency_key && (!*r->idempotency_key || strlen(r->idempotency_key) > 256)) ||
             (need_key && !r->idempotency_key)))
                k = field_error(reply, "idempotency_key", "a string of 1 to 256 characters");
        if (!k)
                k = size_field(p->o, "vram_bytes", INT64_MAX, &has_vram, &r->vram_bytes, reply);
        if (!k)
                k = size_field(p->o, "memory_bytes", INT64_MAX, &has_mem, &r->slice_memory_bytes, reply);
        if (!k)
                k = size_field(p->o, "share_percent", 100, &has_share, &share, reply);
        if (!k && (has_vram + has_mem + (r->type != NULL)) != 1)
                k = field_error(
                        reply, "vram_bytes",
                        "exactly one of vram_bytes, type or memory_bytes (a slice, with share_percent)");
        if (!k && has_share && !has_mem)
                k = field_error(reply, "share_percent", "only with memory_bytes (a slice)");
        /* a domain is given a vGPU (an mdev or a VF); a slice is for containers */
        if (!k && has_mem && r->domain)
                k = field_error(reply, "domain", "only with type or vram_bytes (a vGPU), not with a slice");
        if (!k)
                k = str_list(p->o, "models", p->models, &r->n_models, reply);
        if (!k)
                k = str_list(p->o, "prefer", p->prefer, &r->n_prefer, reply);
        if (k) {
                place_body_done(p);
                return k;
        }
        r->kind = r->type ? VGPU_FLEET_KIND_VGPU : has_mem ? VGPU_FLEET_KIND_SLICE : VGPU_FLEET_KIND_VRAM;
        r->slice_share_percent = (unsigned) share;
        r->models = p->models;
        r->prefer = p->prefer;
        if (!r->tenant)
                r->tenant = "default";
        return 0;
}

/* ---- the view ---- */

/* This broker's share of near-equal GPUs among the live brokers (brokers/members/, sorted by
 * id), under the cache's lock. Brokers placing at once then draw from different GPUs instead of
 * racing for the same few: a lost race costs a txn and a retry. No share before this broker's
 * own key is seen (just started): a disagreement about the members only costs conflicts, never
 * correctness (the claim is a compare-and-swap). */
void policy_share(struct broker *b, struct vgpu_fleet_policy *p) {
        unsigned n = 0, rank = 0;
        bool self = false;
        for (struct entry *e = NULL; (e = cache_next(&b->cache, KIND_BROKER, e));) {
                int cmp = strcmp(e->name, b->id);
                n++;
                rank += cmp < 0;
                self = self || cmp == 0;
        }
        p->n_shares = self ? n : 0;
        p->share = self ? rank : 0;
}

void view_done(struct view *v) {
        free(v->c), free(v->gpu), free(v->alloc), free(v->host);
        *v = (struct view){};
}

int view_alloc(struct view *v, size_t cap) {
        *v = (struct view){};
        if (cap > 0 &&
            (!(v->c = malloc(cap * sizeof(*v->c))) || !(v->gpu = malloc(cap * sizeof(*v->gpu))) ||
             !(v->alloc = malloc(cap * sizeof(*v->alloc))) || !(v->host = malloc(cap * sizeof(*v->host))))) {
                view_done(v);
                return -ENOMEM;
        }
        return 0;
}

struct vgpu_fleet_candidate *view_add(struct view *v, struct entry *e) {
        struct entry *h = e->link[LINK_HOST], *a = e->link[LINK_ALLOC];
        size_t n = v->n++;
        cache_gpu_candidate(e, &v->c[n]);
        v->gpu[n] = e;
        v->alloc[n] = a && a->valid ? a : NULL;
        v->host[n] = h && h->valid ? h : NULL;
        return &v->c[n];
}

int view_build(struct broker *b, const char *tenant, char **excluded, size_t n_excluded, struct view *v) {
        struct cache *c = &b->cache;
        /* sized once (growing four arrays through 8,000 GPUs copied them a dozen times), filled
         * from the cache's array of GPU entries (cache.c) */
        char key[VGPU_FLEET_KEY_MAX];
        int r = view_alloc(v, c->n_gpus);
        if (r < 0)
                return r;
        for (size_t k = 0; k < c->n_gpus; k++) {
                struct entry *e = c->gpus[k];
                if (!e->valid)
                        continue;
                struct vgpu_fleet_candidate *cand = view_add(v, e);
                for (size_t i = 0; i < n_excluded; i++)
                        if (strcmp(excluded[i], e->u.gpu.gpu) == 0)
                                cand->host_alive = false;
        }
        if (tenant) {
                key_of(b, key, sizeof(key), "quota", tenant, NULL);
                struct entry *q = cache_get(c, key);
                if (q && q->valid) {
                        v->usage = q->u.quota;
                        v->usage_mod = q->mod_revision;
                }
                v->have_usage = true;
        }
        return 0;
}

json_object *rejected_json(const struct vgpu_fleet_placement *p) {
        json_object *a = json_object_new_array();
        for (int i = 0; i < _VGPU_FLEET_FILTER_MAX; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "filter", json_object_new_string(vgpu_fleet_filter_to_string(i)));
                json_object_object_add(o, "rejected_gpus", json_object_new_int((int) p->rejected[i]));
                json_object_array_add(a, o);
        }
        return a;
}

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

json_object *session_json(const struct vgpu_fleet_session *s, const struct vgpu_fleet_claim *c) {
        json_object *o = json_object_new_object();
        add_str(o, "session", s->session);
        add_str(o, "user", s->user);
        add_str(o, "tenant", s->tenant);
        add_str(o, "idempotency_key", s->idempotency_key);
        add_str(o, "claim", c ? c->claim : NULL);
        add_str(o, "host", c ? c->host : NULL);
        add_str(o, "gpu", c ? c->gpu : NULL);
        add_str(o, "state", c ? vgpu_fleet_state_to_string(c->state) : "RELEASED");
        add_str(o, "kind", c ? vgpu_fleet_kind_to_string(c->kind) : NULL);
        add_str(o, "type", c ? c->type : NULL);
        json_object_object_add(o, "vram_bytes", c ? json_object_new_int64((int64_t) c->vram_bytes) : NULL);
        json_object_object_add(o, "share_percent",
                               c && c->has_slice ? json_object_new_int((int) c->slice_share_percent) : NULL);
        add_str(o, "domain", c ? c->domain : NULL);
        add_str(o, "instance", c ? c->instance : NULL);
        add_str(o, "error", c ? c->error : NULL);
        json_object_object_add(o, "created_ms", json_object_new_int64(s->created_ms));
        json_object_object_add(o, "deadline_ms", c ? json_object_new_int64(c->deadline_ms) : NULL);
        return o;
}

/* ---- sessions ---- */

/* The session and its claim from etcd (not the cache: a retried request must see the truth). */
static int session_fetch(struct broker *b, struct vgpu_etcd *e, const char *sid,
                         struct vgpu_fleet_session *ret_s, struct vgpu_fleet_claim *ret_c,
                         bool *ret_has_claim, struct vgpu_error *err) {
        char key[VGPU_FLEET_KEY_MAX];
        struct vgpu_etcd_range rg = {};
        key_of(b, key, sizeof(key), "sessions", sid, NULL);
        int r = vgpu_etcd_get(e, key, &rg, err);
        if (r < 0)
                return r;
        if (rg.n == 0) {
                vgpu_etcd_range_free(&rg);
                return 0;
        }
        r = vgpu_fleet_session_from_json(rg.kvs[0].value, ret_s, err);
        vgpu_etcd_range_free(&rg);
        if (r < 0)
                return r;
        *ret_has_claim = false;
        /* the full key, or one relative to the prefix */
        if (ret_s->claim_key[0] != '/')
                (void) vgpu_fleet_key(key, sizeof(key), b->prefix, ret_s->claim_key, NULL);
        else
                snprintf(key, sizeof(key), "%s", ret_s->claim_key);
        if ((r = vgpu_etcd_get(e, key, &rg, err)) < 0) {
                vgpu_fleet_session_free(ret_s);
                return r;
        }
        if (rg.n > 0 && vgpu_fleet_claim_from_json(rg.kvs[0].value, ret_c, err) >= 0)
                *ret_has_claim = true;
        vgpu_etcd_range_free(&rg);
        return 1;
}

static void reply_session(struct broker *b, struct vgpu_etcd *e, const char *sid, unsigned status,
                          struct api_reply *reply) {
        struct vgpu_fleet_session s = {};
        struct vgpu_fleet_claim c = {};
        struct vgpu_error err = {};
        bool has_claim = false;
        int r = session_fetch(b, e, sid, &s, &c, &has_claim, &err);
        if (r < 0) {
                atomic_fetch_add(&b->etcd_errors, 1);
                reply->retry_after = 1;
                return reply_error(reply, 503, "etcd: %s", err.message);
        }
        if (r == 0)
                return reply_error(reply, 404, "session %s: no such session", sid);
        reply_json(reply, status, session_json(&s, has_claim ? &c : NULL));
        vgpu_fleet_session_free(&s);
        vgpu_fleet_claim_free(&c);
}

static void random_id(char buf[33]) {
        uint8_t r[16];
        if (getrandom(r, sizeof(r), 0) != sizeof(r))
                for (size_t i = 0; i < sizeof(r); i++)
                        r[i] = (uint8_t) rand();
        for (size_t i = 0; i < sizeof(r); i++)
                snprintf(buf + 2 * i, 3, "%02x", r[i]);
}

/* ---- in-flight claims of this broker ---- */

static bool inflight_has_locked(struct broker *b, const char *gpu) {
        for (size_t i = 0; i < b->n_inflight; i++)
                if (strcmp(b->inflight[i], gpu) == 0)
                        return true;
        return false;
}

/* The fit to try: the drawn one unless another request here is claiming that GPU now, then the
 * next in order that is free of one (the one a lost race would land on, a round trip sooner);
 * registered as in flight. */
static const struct vgpu_fleet_fit *inflight_pick(struct broker *b, const struct vgpu_fleet_placement *p,
                                                  const struct view *v) {
        const struct vgpu_fleet_fit *f = &p->fits[0];
        pthread_mutex_lock(&b->inflight_lock);
        for (size_t i = 0; i < p->n_fits; i++)
                if (!inflight_has_locked(b, v->c[p->fits[i].index].gpu->gpu)) {
                        f = &p->fits[i];
                        break;
                }
        if (b->n_inflight == b->inflight_size) {
                size_t n = b->inflight_size ? 2 * b->inflight_size : 16;
                char(*ni)[160] = realloc(b->inflight, n * sizeof(*ni));
                if (ni) {
                        b->inflight = ni;
                        b->inflight_size = n;
                }
        }
        if (b->n_inflight < b->inflight_size)
                snprintf(b->inflight[b->n_inflight++], 160, "%s", v->c[f->index].gpu->gpu);
        pthread_mutex_unlock(&b->inflight_lock);
        return f;
}

static size_t inflight_count(struct broker *b) {
        pthread_mutex_lock(&b->inflight_lock);
        size_t n = b->n_inflight;
        pthread_mutex_unlock(&b->inflight_lock);
        return n;
}

/* Whether every fit is being claimed by another request here: then inflight_pick() goes past
 * them, to fits only the full scan has. */
static bool inflight_all(struct broker *b, const struct vgpu_fleet_placement *p, const struct view *v) {
        bool all = true;
        pthread_mutex_lock(&b->inflight_lock);
        for (size_t i = 0; all && i < p->n_fits; i++)
                all = inflight_has_locked(b, v->c[p->fits[i].index].gpu->gpu);
        pthread_mutex_unlock(&b->inflight_lock);
        return all;
}

/* The full scan's placement (view_build, the holds, vgpu_fleet_place), under the read lock. */
static int place_full(struct broker *b, const struct vgpu_fleet_request *rq,
                      const struct vgpu_fleet_policy *policy, bool quotas, char **excluded, size_t n_excluded,
                      struct view *v, struct vgpu_fleet_placement *p, struct vgpu_error *err) {
        int r = view_build(b, quotas ? rq->tenant : NULL, excluded, n_excluded, v);
        if (r < 0)
                return vgpu_error_set(err, r, "out of memory");
        holds_order(b, rq, v); /* waiters oldest first */
        return vgpu_fleet_place(v->c, v->n, rq, policy, quotas ? &v->usage : NULL, p, err);
}

/* --check-index's comparison (VGPU_BROKER_CHECK_INDEX=1, tests): the full scan must agree with
 * the index's choice, the same tied count and the same first fit. */
static void index_check(struct broker *b, const struct vgpu_fleet_request *rq,
                        const struct vgpu_fleet_policy *policy, const struct view *fv,
                        const struct vgpu_fleet_placement *fp) {
        struct view v = {};
        struct vgpu_fleet_placement p = {};
        struct vgpu_error err = {};
        if (place_full(b, rq, policy, false, NULL, 0, &v, &p, &err) >= 0) {
                const char *want = p.n_fits ? v.c[p.fits[0].index].gpu->gpu : "(none)",
                           *got = fv->c[fp->fits[0].index].gpu->gpu;
                if (p.n_tied != fp->n_tied || strcmp(want, got) != 0) {
                        atomic_fetch_add(&b->index_mismatches, 1);
                        broker_log(LOG_ERR,
                                   "placement index chose %s of %zu tied, the full scan %s of %zu (key %s)",
                                   got, fp->n_tied, want, p.n_tied, rq->idempotency_key);
                }
        }
        vgpu_fleet_placement_free(&p);
        view_done(&v);
}

static void inflight_done(struct broker *b, const char *gpu) {
        pthread_mutex_lock(&b->inflight_lock);
        for (size_t i = 0; i < b->n_inflight; i++)
                if (strcmp(b->inflight[i], gpu) == 0) {
                        memmove(&b->inflight[i], &b->inflight[i + 1],
                                (b->n_inflight - i - 1) * sizeof(*b->inflight));
                        b->n_inflight--;
                        break;
                }
        pthread_mutex_unlock(&b->inflight_lock);
}

/* What one try places, copied out of the cache before the read lock is dropped. */
struct pick {
        char host[160], gpu[160], type[160];
        enum vgpu_fleet_kind kind;
        uint64_t vram_bytes;
        unsigned share_percent;
        int64_t host_lease, alloc_mod, gpu_create;
        struct vgpu_fleet_alloc alloc_after;
        struct vgpu_fleet_quota usage;
        int64_t usage_mod;
};

static void sessions_post(struct broker *b, const struct api_request *req, struct api_reply *reply) {
        struct place_body body;
        double t0 = mono_s();
        char *excluded[8];
        size_t n_excluded = 0;
        if (place_body_parse(req, true, &body, reply) < 0) {
                atomic_fetch_add(&b->bad_requests, 1);
                return;
        }
        struct vgpu_fleet_request *rq = &body.req;
        char uid_user[32];
        if (!rq->user) {
                snprintf(uid_user, sizeof(uid_user), "uid:%ld", req->uid);
                rq->user = req->uid >= 0 ? uid_user : "anonymous";
        }
        char sid[33], claim_id[33], skey[VGPU_FLEET_KEY_MAX], ckey[VGPU_FLEET_KEY_MAX];
        vgpu_fleet_session_id(rq->idempotency_key, sid);
        key_of(b, skey, sizeof(skey), "sessions", sid, NULL);
        struct vgpu_error err = {};
        struct vgpu_etcd *e = NULL;
        if (broker_etcd_take(b, &e, &err) < 0) {
                reply->retry_after = 1;
                reply_error(reply, 503, "etcd: %s", err.message);
                place_body_done(&body);
                return;
        }
        /* a retry of a request that was placed: the same session, without a txn */
        pthread_rwlock_rdlock(&b->cache.lock);
        bool known = cache_get(&b->cache, skey) != NULL;
        pthread_rwlock_unlock(&b->cache.lock);
        if (known) {
                atomic_fetch_add(&b->replayed, 1);
                reply_session(b, e, sid, 200, reply);
                goto done;
        }
        struct vgpu_fleet_policy policy = { .policy = b->cfg.policy,
                                            .seed = b->cfg.seed,
                                            .near_percent = b->cfg.near_percent,
                                            .quota_vram_bytes = b->cfg.quota_vram_bytes,
                                            .quota_sessions = b->cfg.quota_sessions };
        bool quotas = b->cfg.quota_vram_bytes || b->cfg.quota_sessions;
        for (int attempt = 0; attempt < b->cfg.tries; attempt++) {
                struct view v = {};
                struct vgpu_fleet_placement p = {};
                struct pick pk = {};
                pthread_rwlock_rdlock(&b->cache.lock);
                /* the draw differs per attempt: a lost race does not pick the same GPU again */
                policy.seed = b->cfg.seed + (uint64_t) attempt * UINT64_C(0x9e3779b97f4a7c15);
                policy_share(b, &policy);
                /* the index when it can decide (a big fleet: microseconds, not milliseconds), else
                 * every GPU */
                int r = 1;
                if (place_fast_applies(b, rq, &policy, quotas, n_excluded)) {
                        r = place_fast(b, rq, &policy, inflight_count(b) + 1, &v, &p);
                        if (r == 0 && inflight_all(b, &p, &v)) {
                                vgpu_fleet_placement_free(&p);
                                view_done(&v);
                                r = 1;
                        }
                        if (r == 0) {
                                atomic_fetch_add(&b->indexed, 1);
                                if (b->cfg.check_index)
                                        index_check(b, rq, &policy, &v, &p);
                        }
                }
                if (r == 1)
                        r = place_full(b, rq, &policy, quotas, excluded, n_excluded, &v, &p, &err);
                else if (r < 0)
                        vgpu_error_set(&err, r, "out of memory");
                if (r >= 0 && p.n_fits > 0) {
                        const struct vgpu_fleet_fit *f = inflight_pick(b, &p, &v);
                        const struct entry *g = v.gpu[f->index], *h = v.host[f->index],
                                           *a = v.alloc[f->index];
                        snprintf(pk.host, sizeof(pk.host), "%s", g->u.gpu.host);
                        snprintf(pk.gpu, sizeof(pk.gpu), "%s", g->u.gpu.gpu);
                        snprintf(pk.type, sizeof(pk.type), "%s", f->type ? f->type : "");
                        pk.kind = f->kind;
                        pk.vram_bytes = f->vram_bytes;
                        pk.share_percent = f->share_percent;
                        /* the lease of the GPU's key, whose incarnation the txn compares (the
                         * host's key is bound to the same lease) */
                        pk.host_lease = g->lease ? g->lease : h->lease ? h->lease : h->u.host.lease;
                        pk.gpu_create = g->create_revision;
                        pk.alloc_mod = a ? a->mod_revision : 0;
                        pk.usage = v.usage;
                        pk.usage_mod = v.usage_mod;
                        random_id(claim_id);
                        struct vgpu_fleet_claim probe = { .claim = claim_id,
                                                          .host = pk.host,
                                                          .gpu = pk.gpu,
                                                          .kind = pk.kind,
                                                          .type = pk.type[0] ? pk.type : NULL,
                                                          .vram_bytes = pk.vram_bytes,
                                                          .has_slice = pk.kind == VGPU_FLEET_KIND_SLICE,
                                                          .slice_share_percent = pk.share_percent };
                        r = vgpu_fleet_alloc_apply(a ? &a->u.alloc : NULL, &probe, +1, &pk.alloc_after, &err);
                }
                pthread_rwlock_unlock(&b->cache.lock);
                if (r < 0) {
                        if (pk.gpu[0])
                                inflight_done(b, pk.gpu);
                        vgpu_fleet_placement_free(&p);
                        view_done(&v);
                        atomic_fetch_add(&b->bad_requests, 1);
                        reply_error(reply, r == -EINVAL ? 400 : 500, "%s", err.message);
                        goto done;
                }
                if (p.n_fits == 0) {
                        atomic_fetch_add(&b->no_capacity, 1);
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "error",
                                               json_object_new_string("no GPU can take this request"));
                        json_object_object_add(o, "candidates", json_object_new_int((int) v.n));
                        json_object_object_add(o, "rejected", rejected_json(&p));
                        reply->retry_after = 5;
                        reply_json(reply, 503, o);
                        vgpu_fleet_placement_free(&p);
                        view_done(&v);
                        char held[160];
                        uint64_t held_bytes;
                        if (holds_pick(b, rq, held, sizeof(held), &held_bytes))
                                holds_place(b, e, held, rq->idempotency_key, held_bytes);
                        goto done;
                }
                vgpu_fleet_placement_free(&p);
                view_done(&v);

                int64_t now = now_ms();
                key_of(b, ckey, sizeof(ckey), "claims", pk.host, claim_id);
                struct vgpu_fleet_claim claim = {
                        .claim = claim_id,
                        .session = sid,
                        .user = (char *) rq->user,
                        .tenant = (char *) rq->tenant,
                        .host = pk.host,
                        .gpu = pk.gpu,
                        .kind = pk.kind,
                        .type = pk.type[0] ? pk.type : NULL,
                        .vram_bytes = pk.vram_bytes,
                        .has_slice = pk.kind == VGPU_FLEET_KIND_SLICE,
                        .slice_memory_bytes = pk.kind == VGPU_FLEET_KIND_SLICE ? pk.vram_bytes : 0,
                        .slice_share_percent = pk.share_percent,
                        .domain = (char *) rq->domain,
                        .state = VGPU_FLEET_PENDING,
                        .host_lease = pk.host_lease,
                        .created_ms = now,
                        .deadline_ms = now + (int64_t) b->cfg.pending_timeout_s * 1000,
                };
                struct vgpu_fleet_session session = { .session = sid,
                                                      .claim_key = ckey,
                                                      .user = (char *) rq->user,
                                                      .tenant = (char *) rq->tenant,
                                                      .idempotency_key = (char *) rq->idempotency_key,
                                                      .created_ms = now };
                struct vgpu_fleet_quota quota = { pk.usage.vram_bytes + pk.vram_bytes,
                                                  pk.usage.sessions + 1 };
                struct vgpu_fleet_claim_txn t = { .prefix = b->prefix,
                                                  .claim = &claim,
                                                  .alloc = &pk.alloc_after,
                                                  .alloc_mod_revision = pk.alloc_mod,
                                                  .gpu_create_revision = pk.gpu_create,
                                                  .session = &session,
                                                  .quota = quotas ? &quota : NULL,
                                                  .quota_mod_revision = pk.usage_mod };
                struct vgpu_fleet_claim_result res = {};
                r = vgpu_fleet_claim_txn(e, &t, &res, &err);
                inflight_done(b, pk.gpu);
                if (r < 0) {
                        vgpu_fleet_alloc_free(&pk.alloc_after);
                        atomic_fetch_add(&b->etcd_errors, 1);
                        /* the outcome may be unknown (sent, not answered): the session key says */
                        struct vgpu_fleet_session s = {};
                        struct vgpu_fleet_claim c = {};
                        bool hc = false;
                        struct vgpu_error err2 = {};
                        if (session_fetch(b, e, sid, &s, &c, &hc, &err2) > 0) {
                                reply_json(reply, 201, session_json(&s, hc ? &c : NULL));
                                vgpu_fleet_session_free(&s);
                                vgpu_fleet_claim_free(&c);
                        } else {
                                reply->retry_after = 1;
                                reply_error(reply, 503, "etcd: %s (retry with the same idempotency_key)",
                                            err.message);
                        }
                        goto done;
                }
                char akey[VGPU_FLEET_KEY_MAX];
                key_of(b, akey, sizeof(akey), "alloc", pk.gpu, NULL);
                switch (res.outcome) {
                case VGPU_FLEET_CLAIMED: {
                        /* our own writes into the cache now: the next placement here sees them */
                        _cleanup_free_ char *cj = NULL, *sj = NULL, *aj = NULL, *qj = NULL;
                        char qkey[VGPU_FLEET_KEY_MAX];
                        if (vgpu_fleet_claim_to_json(&claim, &cj, &err) >= 0 &&
                            vgpu_fleet_session_to_json(&session, &sj, &err) >= 0 &&
                            vgpu_fleet_alloc_to_json(&pk.alloc_after, &aj, &err) >= 0) {
                                pthread_rwlock_wrlock(&b->cache.lock);
                                cache_put_locked(b, akey, aj, res.revision, 0);
                                cache_put_locked(b, ckey, cj, res.revision, 0);
                                cache_put_locked(b, skey, sj, res.revision, 0);
                                if (quotas && vgpu_fleet_quota_to_json(&quota, &qj, &err) >= 0) {
                                        key_of(b, qkey, sizeof(qkey), "quota", rq->tenant, NULL);
                                        cache_put_locked(b, qkey, qj, res.revision, 0);
                                }
                                pthread_rwlock_unlock(&b->cache.lock);
                        }
                        holds_drop(b, e, pk.gpu, rq->idempotency_key);
                        atomic_fetch_add(&b->placed, 1);
                        broker_observe_latency(b, mono_s() - t0);
                        broker_log(LOG_DEBUG, "session %s: claim %s on %s/%s (%d conflicts)", sid, claim_id,
                                   pk.host, pk.gpu, attempt);
                        reply_json(reply, 201, session_json(&session, &claim));
                        vgpu_fleet_alloc_free(&pk.alloc_after);
                        goto done;
                }
                case VGPU_FLEET_SESSION_EXISTS:
                        atomic_fetch_add(&b->replayed, 1);
                        vgpu_fleet_claim_result_free(&res);
                        vgpu_fleet_alloc_free(&pk.alloc_after);
                        reply_session(b, e, sid, 200, reply);
                        goto done;
                case VGPU_FLEET_HOST_CHANGED: {
                        /* the host rejoined under a new lease: its GPU's key as it is now, then again */
                        atomic_fetch_add(&b->conflicts, 1);
                        char gkey[VGPU_FLEET_KEY_MAX];
                        key_of(b, gkey, sizeof(gkey), "gpus", pk.host, pk.gpu);
                        struct vgpu_etcd_kv kv = { .key = gkey,
                                                   .value = res.gpu_value,
                                                   .mod_revision = res.gpu_mod_revision,
                                                   .create_revision = res.gpu_create_revision,
                                                   .lease = res.gpu_lease };
                        pthread_rwlock_wrlock(&b->cache.lock);
                        cache_put_kv_locked(b, &kv);
                        pthread_rwlock_unlock(&b->cache.lock);
                        break;
                }
                case VGPU_FLEET_HOST_GONE:
                        atomic_fetch_add(&b->host_gone, 1);
                        if (n_excluded < sizeof(excluded) / sizeof(excluded[0]))
                                excluded[n_excluded++] = strdup(pk.gpu);
                        break;
                case VGPU_FLEET_ALLOC_CHANGED:
                case VGPU_FLEET_QUOTA_CHANGED: {
                        atomic_fetch_add(&b->conflicts, 1);
                        /* the failure branch's fresh values into the cache, then place again */
                        _cleanup_free_ char *aj = NULL, *qj = NULL;
                        char qkey[VGPU_FLEET_KEY_MAX];
                        key_of(b, qkey, sizeof(qkey), "quota", rq->tenant, NULL);
                        pthread_rwlock_wrlock(&b->cache.lock);
                        if (res.outcome == VGPU_FLEET_ALLOC_CHANGED) {
                                if (res.alloc_mod_revision == 0)
                                        cache_delete_locked(b, akey, res.revision);
                                else if (vgpu_fleet_alloc_to_json(&res.alloc, &aj, &err) >= 0)
                                        cache_put_locked(b, akey, aj, res.alloc_mod_revision, 0);
                        } else if (res.quota_mod_revision == 0)
                                cache_delete_locked(b, qkey, res.revision);
                        else if (vgpu_fleet_quota_to_json(&res.quota, &qj, &err) >= 0)
                                cache_put_locked(b, qkey, qj, res.quota_mod_revision, 0);
                        pthread_rwlock_unlock(&b->cache.lock);
                        break;
                }
                }
                vgpu_fleet_claim_result_free(&res);
                vgpu_fleet_alloc_free(&pk.alloc_after);
        }
        atomic_fetch_add(&b->exhausted, 1);
        reply_error(reply, 409, "lost the race for a GPU %d times: retry with the same idempotency_key",
                    b->cfg.tries);
        for (size_t i = 0; i < n_excluded; i++)
                free(excluded[i]);
        n_excluded = 0;
done:
        for (size_t i = 0; i < n_excluded; i++)
                free(excluded[i]);
        broker_etcd_give(b, e);
        place_body_done(&body);
}

static void session_one(struct broker *b, const char *method, const char *sid, struct api_reply *reply) {
        if (!vgpu_fleet_name_is_valid(sid) || strlen(sid) > 64)
                return reply_error(reply, 400, "session: \"%s\" is not a session id", sid);
        struct vgpu_error err = {};
        struct vgpu_etcd *e = NULL;
        if (broker_etcd_take(b, &e, &err) < 0) {
                reply->retry_after = 1;
                return reply_error(reply, 503, "etcd: %s", err.message);
        }
        if (strcmp(method, "GET") == 0)
                reply_session(b, e, sid, 200, reply);
        else {
                enum vgpu_fleet_release_outcome o;
                if (vgpu_fleet_release(e, b->prefix, sid, false, &o, &err) < 0) {
                        atomic_fetch_add(&b->etcd_errors, 1);
                        reply->retry_after = 1;
                        reply_error(reply, err.code == -EBUSY ? 409 : 503, "%s", err.message);
                } else {
                        if (o != VGPU_FLEET_RELEASE_ABSENT)
                                atomic_fetch_add(&b->released, 1);
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "session", json_object_new_string(sid));
                        json_object_object_add(j, "state",
                                               json_object_new_string(o == VGPU_FLEET_RELEASE_MARKED
                                                                              ? "RELEASING"
                                                                              : "RELEASED"));
                        json_object_object_add(j, "changed",
                                               json_object_new_boolean(o != VGPU_FLEET_RELEASE_ABSENT));
                        reply_json(reply, 200, j);
                }
        }
        broker_etcd_give(b, e);
}

/* ---- routing ---- */

static bool path_is(const char *path, const char *prefix, const char **ret_rest) {
        size_t n = strlen(prefix);
        if (strncmp(path, prefix, n) != 0)
                return false;
        *ret_rest = path + n;
        return true;
}

static void method_not_allowed(struct api_reply *reply, const char *method, const char *path) {
        reply_error(reply, 405, "%s %s: method not allowed", method, path);
}

void api_dispatch(struct broker *b, const struct api_request *req, struct api_reply *reply) {
        const char *m = req->method, *p = req->path, *rest;
        bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
        *reply = (struct api_reply){};
        if (strcmp(p, "/healthz") == 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "status", json_object_new_string("ok"));
                return reply_json(reply, 200, o);
        }
        if (strcmp(p, "/readyz") == 0) {
                bool ready = atomic_load(&b->cache.ready);
                json_object *o = json_object_new_object();
                json_object_object_add(o, "status", json_object_new_string(ready ? "ready" : "syncing"));
                if (!ready)
                        reply->retry_after = 1;
                return reply_json(reply, ready ? 200 : 503, o);
        }
        if (strcmp(p, "/metrics") == 0) {
                char *buf = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&buf, &size);
                if (!f)
                        return reply_error(reply, 500, "out of memory");
                metrics_write(b, f);
                fclose(f);
                *reply = (struct api_reply){ .status = 200,
                                             .body = buf,
                                             .size = size,
                                             .content_type = "text/plain; version=0.0.4; charset=utf-8" };
                return;
        }
        if (dashboard_static_path(p))
                return dashboard_static(b, req, reply);
        if (strcmp(p, "/v1/whoami") == 0)
                return get ? api_whoami(b, req, reply) : method_not_allowed(reply, m, p);
        if (strncmp(p, "/v1/", 4) != 0)
                return reply_error(reply, 404, "%s: no such endpoint", p);
        if (!atomic_load(&b->cache.ready)) {
                reply->retry_after = 1;
                return reply_error(reply, 503, "the broker is still reading the fleet from etcd");
        }
        if (strcmp(p, "/v1/sessions") == 0) {
                if (post)
                        return sessions_post(b, req, reply);
                return get ? api_sessions(b, reply) : method_not_allowed(reply, m, p);
        }
        if (path_is(p, "/v1/sessions/", &rest) && *rest) {
                if (!get && strcmp(m, "DELETE") != 0)
                        return method_not_allowed(reply, m, p);
                return session_one(b, m, rest, reply);
        }
        if (strcmp(p, "/v1/hosts") == 0)
                return get ? api_hosts(b, reply) : method_not_allowed(reply, m, p);
        if (strcmp(p, "/v1/gpus") == 0)
                return get ? api_gpus(b, reply) : method_not_allowed(reply, m, p);
        if (strcmp(p, "/v1/events") == 0)
                return get ? api_events(b, reply) : method_not_allowed(reply, m, p);
        if (strcmp(p, "/v1/placement/explain") == 0)
                return post ? api_explain(b, req, reply) : method_not_allowed(reply, m, p);
        if (path_is(p, "/v1/hosts/", &rest)) {
                const char *slash = strchr(rest, '/');
                char host[160];
                if (slash && (size_t) (slash - rest) < sizeof(host)) {
                        memcpy(host, rest, (size_t) (slash - rest));
                        host[slash - rest] = '\0';
                        const char *verb = slash + 1;
                        if (strcmp(verb, "cordon") == 0 || strcmp(verb, "uncordon") == 0 ||
                            strcmp(verb, "drain") == 0) {
                                if (!post)
                                        return method_not_allowed(reply, m, p);
                                if (!vgpu_fleet_name_is_valid(host))
                                        return reply_error(reply, 400, "host: \"%s\" is not a host name",
                                                           host);
                                return api_cordon(b, host, verb, reply);
                        }
                }
        }
        reply_error(reply, 404, "%s: no such endpoint", p);
}
