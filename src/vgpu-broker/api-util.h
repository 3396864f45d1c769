/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* api-util.h — what api.c and api-admin.c share: replies, request parsing, the cache's view. */
#pragma once

#include <json-c/json.h>

#include "basic/macro.h"

#include "broker.h"

void reply_json(struct api_reply *r, unsigned status, json_object *o); /* consumes o */
void reply_error(struct api_reply *r, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The request of POST /v1/sessions and /v1/placement/explain, parsed (strings point into o). */
struct place_body {
        json_object *o;
        struct vgpu_fleet_request req;
        const char *models[32], *prefer[32];
};
/* 0, or -EINVAL with the reply (400 naming the field) made. need_key: idempotency_key required. */
int place_body_parse(const struct api_request *req, bool need_key, struct place_body *ret,
                     struct api_reply *reply);
void place_body_done(struct place_body *p);

/* The fleet as placement sees it, built under the cache's read lock (pointers into the cache). */
struct view {
        struct vgpu_fleet_candidate *c;
        struct entry **gpu, **alloc, **host;
        size_t n;
        struct vgpu_fleet_quota usage;
        bool have_usage;
        int64_t usage_mod;
};
void policy_share(struct broker *b, struct vgpu_fleet_policy *p);
int view_build(struct broker *b, const char *tenant, char **excluded, size_t n_excluded, struct view *ret);
/* view_build()'s parts: room for cap GPUs (v emptied first; -ENOMEM), and GPU entry e appended
 * as placement sees it, its candidate returned for the caller to adjust */
int view_alloc(struct view *v, size_t cap);
struct vgpu_fleet_candidate *view_add(struct view *v, struct entry *e);
void view_done(struct view *v);

/* place-fast.c: a placement from the cache's index (under the cache's read lock). Whether the
 * index can decide this request; then 0 with a view of the first fits and the placement over
 * it (fits index that view), 1 when the full scan must decide, -ENOMEM. */
#define PLACE_FAST_MAX 64
bool place_fast_applies(struct broker *b, const struct vgpu_fleet_request *rq,
                        const struct vgpu_fleet_policy *policy, bool quotas, size_t n_excluded);
int place_fast(struct broker *b, const struct vgpu_fleet_request *rq, const struct vgpu_fleet_policy *policy,
               size_t max, struct view *ret_view, struct vgpu_fleet_placement *ret);

/* [{"filter": "host_alive", "rejected_gpus": n}, ...]: the placement's rejections */
json_object *rejected_json(const struct vgpu_fleet_placement *p);
/* the session (+ its claim, when cached or given) as the API shows it */
json_object *session_json(const struct vgpu_fleet_session *s, const struct vgpu_fleet_claim *c);
void key_of(struct broker *b, char *buf, size_t size, const char *dir, const char *a, const char *c);

/* api-admin.c */
void api_hosts(struct broker *b, struct api_reply *reply);
void api_gpus(struct broker *b, struct api_reply *reply);
void api_sessions(struct broker *b, struct api_reply *reply);
void api_cordon(struct broker *b, const char *host, const char *verb, struct api_reply *reply);
void api_explain(struct broker *b, const struct api_request *req, struct api_reply *reply);

/* holds.c: memory held for a large request that was refused (ageing); waiters oldest first:
 * holds_order adjusts a view's holds for rq (under the cache's read lock, after view_build) */
void holds_order(struct broker *b, const struct vgpu_fleet_request *rq, struct view *v);
/* true when rq is large enough to wait; the GPU to hold in ret_gpu ("" when none) */
bool holds_pick(struct broker *b, const struct vgpu_fleet_request *rq, char *ret_gpu, size_t size,
                uint64_t *ret_bytes);
void holds_place(struct broker *b, struct vgpu_etcd *e, const char *gpu, const char *key, uint64_t bytes);
void holds_drop(struct broker *b, struct vgpu_etcd *e, const char *gpu, const char *key);
