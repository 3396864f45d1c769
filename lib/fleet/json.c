/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * json.c — the JSON value of each fleet key (doc/fleet.md) to and from its struct. Decoding is
 * strict about the members it needs (type and range, naming the member and the key kind) and
 * ignores members it does not know, so a newer writer does not break an older reader.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "fleet/fleet-internal.h"

/* ---- encoding ---- */

static void add_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_int(json_object *o, const char *k, int64_t v) {
        json_object_object_add(o, k, json_object_new_int64(v));
}

/* lease ids exceed 2^53: a JSON number would lose digits in most readers */
static void add_lease(json_object *o, const char *k, int64_t v) {
        char buf[24];
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        add_str(o, k, buf);
}

static json_object *str_array(char *const *v, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

/* ---- decoding ---- */

struct dec {
        json_object *o;
        const char *what; /* "claim": named in messages */
        struct vgpu_error *err;
        int r;
};

static int bad(struct dec *d, const char *k, const char *expected) {
        if (d->r == 0)
                d->r = vgpu_error_set(d->err, -EINVAL, "%s: member \"%s\": expected %s", d->what, k,
                                      expected);
        return d->r;
}

static json_object *member(struct dec *d, const char *k) {
        json_object *v = NULL;
        return json_object_object_get_ex(d->o, k, &v) ? v : NULL;
}

/* A string member; NULL allowed when !required (absent or null). */
static void get_str(struct dec *d, const char *k, bool required, char **out) {
        json_object *v = member(d, k);
        if (!v) {
                if (required)
                        bad(d, k, "a string");
                return;
        }
        if (!json_object_is_type(v, json_type_string)) {
                bad(d, k, "a string");
                return;
        }
        if (!(*out = strdup(json_object_get_string(v))) && d->r == 0)
                d->r = vgpu_error_set(d->err, -ENOMEM, "out of memory");
}

static void get_int(struct dec *d, const char *k, bool required, int64_t min, int64_t max, int64_t *out) {
        json_object *v = member(d, k);
        if (!v) {
                if (required)
                        bad(d, k, "an integer");
                return;
        }
        if (!json_object_is_type(v, json_type_int)) {
                bad(d, k, "an integer");
                return;
        }
        errno = 0;
        int64_t x = json_object_get_int64(v);
        if (errno != 0 || x < min || x > max) {
                bad(d, k, "an integer in range");
                return;
        }
        *out = x;
}

static void get_u64(struct dec *d, const char *k, bool required, uint64_t *out) {
        int64_t x = 0;
        get_int(d, k, required, 0, INT64_MAX, &x);
        *out = (uint64_t) x;
}

static void get_uint(struct dec *d, const char *k, bool required, unsigned max, unsigned *out) {
        int64_t x = 0;
        get_int(d, k, required, 0, max, &x);
        *out = (unsigned) x;
}

static void get_lease(struct dec *d, const char *k, bool required, int64_t *out) {
        json_object *v = member(d, k);
        if (!v) {
                if (required)
                        bad(d, k, "a lease id (decimal string)");
                return;
        }
        if (json_object_is_type(v, json_type_int)) { /* tolerated: small ids written as numbers */
                *out = json_object_get_int64(v);
                return;
        }
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        char *end;
        errno = 0;
        long long x = s && *s ? strtoll(s, &end, 10) : 0;
        if (!s || !*s || *end || errno != 0 || x < 0) {
                bad(d, k, "a lease id (decimal string)");
                return;
        }
        *out = x;
}

static void get_bool(struct dec *d, const char *k, bool required, bool *out) {
        json_object *v = member(d, k);
        if (!v) {
                if (required)
                        bad(d, k, "true or false");
                return;
        }
        if (!json_object_is_type(v, json_type_boolean)) {
                bad(d, k, "true or false");
                return;
        }
        *out = json_object_get_boolean(v);
}

static void get_str_array(struct dec *d, const char *k, bool required, char ***out, size_t *n_out) {
        json_object *v = member(d, k);
        if (!v) {
                if (required)
                        bad(d, k, "an array of strings");
                return;
        }
        if (!json_object_is_type(v, json_type_array)) {
                bad(d, k, "an array of strings");
                return;
        }
        size_t n = json_object_array_length(v);
        char **a = calloc(n + 1, sizeof(char *));
        if (!a) {
                d->r = d->r ?: vgpu_error_set(d->err, -ENOMEM, "out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string) ||
                    !(a[i] = strdup(json_object_get_string(e)))) {
                        for (size_t j = 0; j < i; j++)
                                free(a[j]);
                        free(a);
                        bad(d, k, "an array of strings");
                        return;
                }
        }
        *out = a;
        *n_out = n;
}

static void free_strv(char **v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

static int dec_open(struct dec *d, const char *text, const char *what, struct vgpu_error *err) {
        *d = (struct dec){ .what = what, .err = err };
        d->o = text ? json_tokener_parse(text) : NULL;
        if (!d->o || !json_object_is_type(d->o, json_type_object)) {
                json_object_put(d->o);
                d->o = NULL;
                return vgpu_error_set(err, -EINVAL, "%s: not a JSON object", what);
        }
        return 0;
}

/* ---- hosts/<host> ---- */

_public_ int vgpu_fleet_host_to_json(const struct vgpu_fleet_host *h, char **ret, struct vgpu_error *err) {
        json_object *o = json_object_new_object();
        if (o) {
                add_str(o, "host", h->host);
                add_str(o, "address", h->address);
                add_str(o, "boot_id", h->boot_id);
                add_str(o, "version", h->version);
                add_lease(o, "lease", h->lease);
                add_int(o, "started_ms", h->started_ms);
        }
        return fleet_json_finish(o, ret, err);
}

_public_ void vgpu_fleet_host_free(struct vgpu_fleet_host *h) {
        if (!h)
                return;
        free(h->host), free(h->address), free(h->boot_id), free(h->version);
        *h = (struct vgpu_fleet_host){};
}

_public_ int vgpu_fleet_host_from_json(const char *text, struct vgpu_fleet_host *ret,
                                       struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_host h = {};
        if (dec_open(&d, text, "host", err) < 0)
                return -EINVAL;
        get_str(&d, "host", true, &h.host);
        get_str(&d, "address", false, &h.address);
        get_str(&d, "boot_id", false, &h.boot_id);
        get_str(&d, "version", false, &h.version);
        get_lease(&d, "lease", false, &h.lease);
        get_int(&d, "started_ms", false, 0, INT64_MAX, &h.started_ms);
        json_object_put(d.o);
        if (d.r < 0) {
                vgpu_fleet_host_free(&h);
                return d.r;
        }
        *ret = h;
        return 0;
}

/* ---- gpus/<host>/<gpu> ---- */

_public_ int vgpu_fleet_gpu_to_json(const struct vgpu_fleet_gpu *g, char **ret, struct vgpu_error *err) {
        json_object *o = json_object_new_object(), *types = json_object_new_array(),
                    *cap = json_object_new_object();
        if (!o || !types || !cap) {
                json_object_put(o), json_object_put(types), json_object_put(cap);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        add_str(o, "host", g->host);
        add_str(o, "gpu", g->gpu);
        add_str(o, "pci_address", g->pci_address);
        add_str(o, "model", g->model);
        add_int(o, "vram_total_bytes", (int64_t) g->vram_total_bytes);
        add_int(o, "vram_used_bytes", (int64_t) g->vram_used_bytes);
        add_str(o, "mode", vgpu_fleet_mode_to_string(g->mode));
        for (size_t i = 0; i < g->n_types; i++) {
                json_object *t = json_object_new_object();
                add_str(t, "name", g->types[i].name);
                add_int(t, "framebuffer_bytes", (int64_t) g->types[i].framebuffer_bytes);
                add_int(t, "free_instances", g->types[i].free_instances);
                add_int(t, "max_instances", g->types[i].max_instances);
                json_object_array_add(types, t);
        }
        json_object_object_add(o, "types", types);
        add_int(cap, "memory_bytes", (int64_t) g->slice_memory_bytes);
        add_int(cap, "share_percent", g->slice_share_percent);
        add_int(cap, "fleet_memory_bytes", (int64_t) g->slice_fleet_memory_bytes);
        add_int(cap, "fleet_share_percent", g->slice_fleet_share_percent);
        json_object_object_add(o, "slice_capacity", cap);
        add_str(o, "health", g->degraded ? "degraded" : "ok");
        json_object_object_add(o, "health_reasons", str_array(g->health_reasons, g->n_health_reasons));
        json_object_object_add(o, "temperature_celsius",
                               g->has_temperature ? json_object_new_int(g->temperature_celsius) : NULL);
        add_int(o, "updated_ms", g->updated_ms);
        return fleet_json_finish(o, ret, err);
}

_public_ void vgpu_fleet_gpu_free(struct vgpu_fleet_gpu *g) {
        if (!g)
                return;
        free(g->host), free(g->gpu), free(g->pci_address), free(g->model);
        for (size_t i = 0; i < g->n_types; i++)
                free(g->types[i].name);
        free(g->types);
        free_strv(g->health_reasons, g->n_health_reasons);
        *g = (struct vgpu_fleet_gpu){};
}

_public_ int vgpu_fleet_gpu_from_json(const char *text, struct vgpu_fleet_gpu *ret, struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_gpu g = {};
        _cleanup_free_ char *mode = NULL, *health = NULL;
        if (dec_open(&d, text, "gpu", err) < 0)
                return -EINVAL;
        get_str(&d, "host", true, &g.host);
        get_str(&d, "gpu", true, &g.gpu);
        get_str(&d, "pci_address", false, &g.pci_address);
        get_str(&d, "model", false, &g.model);
        get_u64(&d, "vram_total_bytes", true, &g.vram_total_bytes);
        get_u64(&d, "vram_used_bytes", false, &g.vram_used_bytes);
        get_str(&d, "mode", false, &mode);
        if (!mode || streq(mode, "none"))
                g.mode = VGPU_FLEET_MODE_NONE;
        else if (streq(mode, "vgpu"))
                g.mode = VGPU_FLEET_MODE_VGPU;
        else if (streq(mode, "slice"))
                g.mode = VGPU_FLEET_MODE_SLICE;
        else
                bad(&d, "mode", "\"vgpu\", \"slice\" or \"none\"");
        json_object *types = member(&d, "types");
        if (types && !json_object_is_type(types, json_type_array))
                bad(&d, "types", "an array");
        else if (types && d.r == 0) {
                size_t n = json_object_array_length(types);
                if (n > 0 && !(g.types = calloc(n, sizeof(*g.types))))
                        d.r = vgpu_error_set(err, -ENOMEM, "out of memory");
                for (size_t i = 0; i < n && d.r == 0; i++) {
                        struct dec t = { .o = json_object_array_get_idx(types, i),
                                         .what = "gpu type",
                                         .err = err };
                        if (!json_object_is_type(t.o, json_type_object)) {
                                bad(&d, "types", "an array of objects");
                                break;
                        }
                        g.n_types++;
                        get_str(&t, "name", true, &g.types[i].name);
                        get_u64(&t, "framebuffer_bytes", true, &g.types[i].framebuffer_bytes);
                        get_uint(&t, "free_instances", false, UINT_MAX, &g.types[i].free_instances);
                        get_uint(&t, "max_instances", false, UINT_MAX, &g.types[i].max_instances);
                        d.r = t.r;
                }
        }
        json_object *cap = member(&d, "slice_capacity");
        if (cap && json_object_is_type(cap, json_type_object)) {
                struct dec c = { .o = cap, .what = "gpu slice_capacity", .err = err };
                get_u64(&c, "memory_bytes", false, &g.slice_memory_bytes);
                get_uint(&c, "share_percent", false, 100, &g.slice_share_percent);
                get_u64(&c, "fleet_memory_bytes", false, &g.slice_fleet_memory_bytes);
                get_uint(&c, "fleet_share_percent", false, 100, &g.slice_fleet_share_percent);
                d.r = d.r ?: c.r;
        } else if (cap && !json_object_is_type(cap, json_type_null))
                bad(&d, "slice_capacity", "an object");
        get_str(&d, "health", false, &health);
        if (health && !streq(health, "ok") && !streq(health, "degraded"))
                bad(&d, "health", "\"ok\" or \"degraded\"");
        g.degraded = streq(health, "degraded");
        get_str_array(&d, "health_reasons", false, &g.health_reasons, &g.n_health_reasons);
        json_object *t = member(&d, "temperature_celsius");
        if (t && json_object_is_type(t, json_type_int)) {
                g.has_temperature = true;
                g.temperature_celsius = json_object_get_int(t);
        } else if (t && !json_object_is_type(t, json_type_null))
                bad(&d, "temperature_celsius", "an integer or null");
        get_int(&d, "updated_ms", false, 0, INT64_MAX, &g.updated_ms);
        json_object_put(d.o);
        if (d.r < 0) {
                vgpu_fleet_gpu_free(&g);
                return d.r;
        }
        *ret = g;
        return 0;
}

/* ---- alloc/<gpu> ---- */

_public_ int vgpu_fleet_alloc_to_json(const struct vgpu_fleet_alloc *a, char **ret, struct vgpu_error *err) {
        json_object *o = json_object_new_object();
        if (o) {
                add_str(o, "host", a->host);
                add_str(o, "gpu", a->gpu);
                add_int(o, "vram_bytes", (int64_t) a->vram_bytes);
                add_int(o, "share_percent", a->share_percent);
                add_str(o, "type_lock", a->type_lock);
                json_object_object_add(o, "claims", str_array(a->claims, a->n_claims));
        }
        return fleet_json_finish(o, ret, err);
}

_public_ void vgpu_fleet_alloc_free(struct vgpu_fleet_alloc *a) {
        if (!a)
                return;
        free(a->host), free(a->gpu), free(a->type_lock);
        free_strv(a->claims, a->n_claims);
        *a = (struct vgpu_fleet_alloc){};
}

_public_ int vgpu_fleet_alloc_from_json(const char *text, struct vgpu_fleet_alloc *ret,
                                        struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_alloc a = {};
        if (dec_open(&d, text, "alloc", err) < 0)
                return -EINVAL;
        get_str(&d, "host", true, &a.host);
        get_str(&d, "gpu", true, &a.gpu);
        get_u64(&d, "vram_bytes", true, &a.vram_bytes);
        get_uint(&d, "share_percent", false, 100000, &a.share_percent);
        get_str(&d, "type_lock", false, &a.type_lock);
        get_str_array(&d, "claims", true, &a.claims, &a.n_claims);
        json_object_put(d.o);
        if (d.r < 0) {
                vgpu_fleet_alloc_free(&a);
                return d.r;
        }
        *ret = a;
        return 0;
}

/* ---- claims/<host>/<claim> ---- */

_public_ int vgpu_fleet_claim_to_json(const struct vgpu_fleet_claim *c, char **ret, struct vgpu_error *err) {
        json_object *o = json_object_new_object();
        if (!o)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        add_str(o, "claim", c->claim);
        add_str(o, "session", c->session);
        add_str(o, "user", c->user);
        add_str(o, "tenant", c->tenant);
        add_str(o, "host", c->host);
        add_str(o, "gpu", c->gpu);
        add_str(o, "kind", vgpu_fleet_kind_to_string(c->kind));
        add_str(o, "type", c->type);
        add_int(o, "vram_bytes", (int64_t) c->vram_bytes);
        json_object *s = NULL;
        if (c->has_slice) {
                s = json_object_new_object();
                add_int(s, "memory_bytes", (int64_t) c->slice_memory_bytes);
                add_int(s, "share_percent", c->slice_share_percent);
        }
        json_object_object_add(o, "slice", s);
        add_str(o, "domain", c->domain);
        add_str(o, "state", vgpu_fleet_state_to_string(c->state));
        add_lease(o, "host_lease", c->host_lease);
        add_int(o, "created_ms", c->created_ms);
        add_int(o, "deadline_ms", c->deadline_ms);
        add_str(o, "instance", c->instance);
        add_str(o, "error", c->error);
        return fleet_json_finish(o, ret, err);
}

_public_ void vgpu_fleet_claim_free(struct vgpu_fleet_claim *c) {
        if (!c)
                return;
        free(c->claim), free(c->session), free(c->user), free(c->tenant), free(c->host), free(c->gpu);
        free(c->type), free(c->domain), free(c->instance), free(c->error);
        *c = (struct vgpu_fleet_claim){};
}

_public_ int vgpu_fleet_claim_from_json(const char *text, struct vgpu_fleet_claim *ret,
                                        struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_claim c = {};
        _cleanup_free_ char *kind = NULL, *state = NULL;
        if (dec_open(&d, text, "claim", err) < 0)
                return -EINVAL;
        get_str(&d, "claim", true, &c.claim);
        get_str(&d, "session", false, &c.session);
        get_str(&d, "user", false, &c.user);
        get_str(&d, "tenant", false, &c.tenant);
        get_str(&d, "host", true, &c.host);
        get_str(&d, "gpu", true, &c.gpu);
        get_str(&d, "kind", true, &kind);
        int k = kind ? vgpu_fleet_kind_from_string(kind) : 0;
        if (k < 0)
                bad(&d, "kind", "\"vgpu\", \"slice\" or \"vram\"");
        c.kind = k < 0 ? 0 : (enum vgpu_fleet_kind) k;
        get_str(&d, "type", false, &c.type);
        get_u64(&d, "vram_bytes", true, &c.vram_bytes);
        json_object *s = member(&d, "slice");
        if (s && json_object_is_type(s, json_type_object)) {
                struct dec sd = { .o = s, .what = "claim slice", .err = err };
                c.has_slice = true;
                get_u64(&sd, "memory_bytes", true, &c.slice_memory_bytes);
                get_uint(&sd, "share_percent", false, 100, &c.slice_share_percent);
                d.r = d.r ?: sd.r;
        } else if (s && !json_object_is_type(s, json_type_null))
                bad(&d, "slice", "an object or null");
        get_str(&d, "domain", false, &c.domain);
        get_str(&d, "state", true, &state);
        int st = state ? vgpu_fleet_state_from_string(state) : 0;
        if (st < 0)
                bad(&d, "state", "PENDING, BOUND, FAILED, RELEASING or LOST");
        c.state = st < 0 ? 0 : (enum vgpu_fleet_state) st;
        get_lease(&d, "host_lease", true, &c.host_lease);
        get_int(&d, "created_ms", false, 0, INT64_MAX, &c.created_ms);
        get_int(&d, "deadline_ms", false, 0, INT64_MAX, &c.deadline_ms);
        get_str(&d, "instance", false, &c.instance);
        get_str(&d, "error", false, &c.error);
        json_object_put(d.o);
        if (d.r < 0) {
                vgpu_fleet_claim_free(&c);
                return d.r;
        }
        *ret = c;
        return 0;
}

/* ---- sessions/<session> ---- */

_public_ int vgpu_fleet_session_to_json(const struct vgpu_fleet_session *s, char **ret,
                                        struct vgpu_error *err) {
        json_object *o = json_object_new_object();
        if (o) {
                add_str(o, "session", s->session);
                add_str(o, "claim_key", s->claim_key);
                add_str(o, "user", s->user);
                add_str(o, "tenant", s->tenant);
                add_str(o, "idempotency_key", s->idempotency_key);
                add_int(o, "created_ms", s->created_ms);
        }
        return fleet_json_finish(o, ret, err);
}

_public_ void vgpu_fleet_session_free(struct vgpu_fleet_session *s) {
        if (!s)
                return;
        free(s->session), free(s->claim_key), free(s->user), free(s->tenant), free(s->idempotency_key);
        *s = (struct vgpu_fleet_session){};
}

_public_ int vgpu_fleet_session_from_json(const char *text, struct vgpu_fleet_session *ret,
                                          struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_session s = {};
        if (dec_open(&d, text, "session", err) < 0)
                return -EINVAL;
        get_str(&d, "session", true, &s.session);
        get_str(&d, "claim_key", true, &s.claim_key);
        get_str(&d, "user", false, &s.user);
        get_str(&d, "tenant", false, &s.tenant);
        get_str(&d, "idempotency_key", false, &s.idempotency_key);
        get_int(&d, "created_ms", false, 0, INT64_MAX, &s.created_ms);
        json_object_put(d.o);
        if (d.r < 0) {
                vgpu_fleet_session_free(&s);
                return d.r;
        }
        *ret = s;
        return 0;
}

/* ---- cordon/<host>, quota/<tenant> ---- */

_public_ int vgpu_fleet_cordon_to_json(const struct vgpu_fleet_cordon *c, char **ret,
                                       struct vgpu_error *err) {
        json_object *o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "draining", json_object_new_boolean(c->draining));
                add_int(o, "since_ms", c->since_ms);
        }
        return fleet_json_finish(o, ret, err);
}

_public_ int vgpu_fleet_cordon_from_json(const char *text, struct vgpu_fleet_cordon *ret,
                                         struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_cordon c = {};
        if (dec_open(&d, text, "cordon", err) < 0)
                return -EINVAL;
        get_bool(&d, "draining", false, &c.draining);
        get_int(&d, "since_ms", false, 0, INT64_MAX, &c.since_ms);
        json_object_put(d.o);
        if (d.r < 0)
                return d.r;
        *ret = c;
        return 0;
}

_public_ int vgpu_fleet_quota_to_json(const struct vgpu_fleet_quota *q, char **ret, struct vgpu_error *err) {
        json_object *o = json_object_new_object();
        if (o) {
                add_int(o, "vram_bytes", (int64_t) q->vram_bytes);
                add_int(o, "sessions", q->sessions);
        }
        return fleet_json_finish(o, ret, err);
}

_public_ int vgpu_fleet_quota_from_json(const char *text, struct vgpu_fleet_quota *ret,
                                        struct vgpu_error *err) {
        struct dec d;
        struct vgpu_fleet_quota q = {};
        if (dec_open(&d, text, "quota", err) < 0)
                return -EINVAL;
        get_u64(&d, "vram_bytes", true, &q.vram_bytes);
        get_uint(&d, "sessions", true, UINT_MAX, &q.sessions);
        json_object_put(d.o);
        if (d.r < 0)
                return d.r;
        *ret = q;
        return 0;
}
