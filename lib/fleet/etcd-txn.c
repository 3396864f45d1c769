/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd-txn.c — etcd's multi-key transaction (compares, then one of two op lists) and leases.
 *
 * The fleet's correctness rests on the txn: one compare-and-swap per GPU (FLEET.md). A failed
 * txn's answer has no "succeeded" (proto3 omits false), so absent means false here.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-internal.h"

static const char *const target_names[] = {
        [VGPU_ETCD_VERSION] = "VERSION", [VGPU_ETCD_CREATE] = "CREATE", [VGPU_ETCD_MOD] = "MOD",
        [VGPU_ETCD_VALUE] = "VALUE",     [VGPU_ETCD_LEASE] = "LEASE",
};
static const char *const target_fields[] = {
        [VGPU_ETCD_VERSION] = "version",  [VGPU_ETCD_CREATE] = "create_revision",
        [VGPU_ETCD_MOD] = "mod_revision", [VGPU_ETCD_VALUE] = "value",
        [VGPU_ETCD_LEASE] = "lease", /* the gateway's name of the compare's lease field */
};
static const char *const result_names[] = {
        [VGPU_ETCD_EQUAL] = "EQUAL",
        [VGPU_ETCD_GREATER] = "GREATER",
        [VGPU_ETCD_LESS] = "LESS",
        [VGPU_ETCD_NOT_EQUAL] = "NOT_EQUAL",
};

static json_object *compare_json(const struct vgpu_etcd_compare *c) {
        if (!c->key || (unsigned) c->target >= ELEMENTSOF(target_names) ||
            (unsigned) c->result >= ELEMENTSOF(result_names))
                return NULL;
        json_object *o = json_object_new_object();
        if (!o || etcd_json_add_key(o, c->key, false) < 0 ||
            json_object_object_add(o, "target", json_object_new_string(target_names[c->target])) < 0 ||
            json_object_object_add(o, "result", json_object_new_string(result_names[c->result])) < 0)
                goto fail;
        if (c->target == VGPU_ETCD_VALUE) {
                const char *v = strempty(c->value);
                _cleanup_free_ char *b = etcd_base64_encode(v, strlen(v));
                if (!b || json_object_object_add(o, "value", json_object_new_string(b)) < 0)
                        goto fail;
        } else if (json_object_object_add(o, target_fields[c->target], etcd_json_new_int64(c->number)) < 0)
                goto fail;
        return o;
fail:
        json_object_put(o);
        return NULL;
}

static json_object *op_json(const struct vgpu_etcd_op *op) {
        if (!op->key)
                return NULL;
        json_object *o = json_object_new_object(), *req = json_object_new_object();
        const char *name = NULL;
        int r = o && req ? etcd_json_add_key(req, op->key, op->kind != VGPU_ETCD_OP_PUT && op->prefix)
                         : -ENOMEM;
        switch (op->kind) {
        case VGPU_ETCD_OP_PUT: {
                const char *v = strempty(op->value);
                _cleanup_free_ char *b = etcd_base64_encode(v, strlen(v));
                if (r >= 0 && (!b || json_object_object_add(req, "value", json_object_new_string(b)) < 0))
                        r = -ENOMEM;
                if (r >= 0 && op->lease != 0 &&
                    json_object_object_add(req, "lease", etcd_json_new_int64(op->lease)) < 0)
                        r = -ENOMEM;
                name = "request_put";
                break;
        }
        case VGPU_ETCD_OP_DELETE:
                name = "request_delete_range";
                break;
        case VGPU_ETCD_OP_RANGE:
                name = "request_range";
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0 || json_object_object_add(o, name, req) < 0) {
                json_object_put(req);
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int add_array(json_object *body, const char *field, json_object *arr) {
        if (!arr || json_object_object_add(body, field, arr) < 0) {
                json_object_put(arr);
                return -ENOMEM;
        }
        return 0;
}

_public_ void vgpu_etcd_txn_result_free(struct vgpu_etcd_txn_result *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_ranges; i++)
                vgpu_etcd_range_free(&r->ranges[i]);
        free(r->ranges);
        *r = (struct vgpu_etcd_txn_result){};
}

static json_object *ops_json(const struct vgpu_etcd_op *ops, size_t n) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                json_object *o = op_json(&ops[i]);
                if (!o || json_object_array_add(arr, o) < 0) {
                        json_object_put(o);
                        json_object_put(arr);
                        return NULL;
                }
        }
        return arr;
}

_public_ int vgpu_etcd_txn(struct vgpu_etcd *e, const struct vgpu_etcd_compare *cmp, size_t n_cmp,
                           const struct vgpu_etcd_op *success, size_t n_success,
                           const struct vgpu_etcd_op *failure, size_t n_failure,
                           struct vgpu_etcd_txn_result *ret, struct vgpu_error *err) {
        if (!e)
                return vgpu_error_set(err, -EINVAL, "etcd txn: no client");
        if (e->grpc)
                return etcd_grpc_txn(e, cmp, n_cmp, success, n_success, failure, n_failure, ret, err);
        json_object *body = json_object_new_object(), *compares = json_object_new_array();
        int r = body ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && compares && i < n_cmp; i++) {
                json_object *c = compare_json(&cmp[i]);
                if (!c || json_object_array_add(compares, c) < 0) {
                        json_object_put(c);
                        r = -EINVAL;
                }
        }
        if (r >= 0)
                r = add_array(body, "compare", TAKE_PTR(compares));
        if (r >= 0)
                r = add_array(body, "success", ops_json(success, n_success));
        if (r >= 0)
                r = add_array(body, "failure", ops_json(failure, n_failure));
        json_object_put(compares);
        if (r < 0) {
                json_object_put(body);
                return vgpu_error_set(err, r, "etcd txn: a compare or op without key or with a bad kind");
        }
        json_object *answer = NULL;
        /* not idempotent: a txn sent and not answered may have been applied; the caller re-reads */
        r = etcd_call(e, "/v3/kv/txn", body, false, &answer, err);
        json_object_put(body);
        if (r < 0)
                return r;
        struct vgpu_etcd_txn_result res = {
                .succeeded = etcd_json_bool(answer, "succeeded"),
                .revision = etcd_header_revision(answer),
        };
        json_object *responses;
        if (json_object_object_get_ex(answer, "responses", &responses) &&
            json_object_is_type(responses, json_type_array)) {
                size_t n = json_object_array_length(responses);
                res.ranges = calloc(n ? n : 1, sizeof(*res.ranges));
                if (!res.ranges)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        json_object *rr;
                        if (!json_object_object_get_ex(json_object_array_get_idx(responses, i),
                                                       "response_range", &rr))
                                continue;
                        r = etcd_range_parse(rr, &res.ranges[res.n_ranges]);
                        if (r >= 0) {
                                /* a range inside a txn has no header of its own: the txn's revision */
                                res.ranges[res.n_ranges].revision = res.revision;
                                res.n_ranges++;
                        }
                }
        }
        json_object_put(answer);
        return etcd_txn_result_return(&res, r, ret, err);
}

int etcd_txn_result_return(struct vgpu_etcd_txn_result *res, int r, struct vgpu_etcd_txn_result *ret,
                           struct vgpu_error *err) {
        if (r < 0) {
                vgpu_etcd_txn_result_free(res);
                return vgpu_error_set(err, r, "etcd txn: bad answer");
        }
        if (ret)
                *ret = *res;
        else
                vgpu_etcd_txn_result_free(res);
        return 0;
}

/* ---- leases ---- */

static json_object *id_body(const char *field, int64_t v) {
        json_object *o = json_object_new_object();
        if (!o || json_object_object_add(o, field, etcd_json_new_int64(v)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

_public_ int vgpu_etcd_lease_grant(struct vgpu_etcd *e, int ttl_s, int64_t *ret_id, struct vgpu_error *err) {
        if (!e || ttl_s <= 0)
                return vgpu_error_set(err, -EINVAL, "etcd lease: TTL must be positive");
        if (e->grpc)
                return etcd_grpc_lease(e, "/etcdserverpb.Lease/LeaseGrant", ttl_s, 0, ret_id, NULL, err);
        json_object *body = id_body("TTL", ttl_s), *answer = NULL;
        if (!body)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        /* a grant answered nowhere leaves at most an unused lease, which expires */
        int r = etcd_call(e, "/v3/lease/grant", body, true, &answer, err);
        json_object_put(body);
        if (r < 0)
                return r;
        int64_t id = etcd_json_int64(answer, "ID");
        json_object *v;
        const char *error = json_object_object_get_ex(answer, "error", &v) ? json_object_get_string(v) : NULL;
        json_object_put(answer);
        if (id == 0)
                return vgpu_error_set(err, -EPROTO, "etcd lease grant: no lease id in the answer%s%s",
                                      error ? ": " : "", strempty(error));
        if (ret_id)
                *ret_id = id;
        return 0;
}

_public_ int vgpu_etcd_lease_keepalive(struct vgpu_etcd *e, int64_t id, int64_t *ret_ttl,
                                       struct vgpu_error *err) {
        if (!e || id == 0)
                return vgpu_error_set(err, -EINVAL, "etcd keepalive: no lease");
        if (e->grpc)
                return etcd_grpc_lease(e, "/etcdserverpb.Lease/LeaseKeepAlive", 0, id, NULL, ret_ttl, err);
        json_object *body = id_body("ID", id), *answer = NULL, *result;
        if (!body)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        /* the gateway streams keepalives: one request per POST, its answer wrapped in "result" */
        int r = etcd_call(e, "/v3/lease/keepalive", body, true, &answer, err);
        json_object_put(body);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(answer, "result", &result)) {
                json_object *v;
                /* a gateway that streams the error instead of TTL 0: the lease is gone all the same */
                if (json_object_object_get_ex(answer, "error", &v) &&
                    strstr(json_object_to_json_string(v), "lease not found")) {
                        json_object_put(answer);
                        if (ret_ttl)
                                *ret_ttl = 0;
                        return 0;
                }
                const char *msg = json_object_object_get_ex(answer, "error", &v)
                                          ? json_object_to_json_string(v)
                                          : "no result";
                r = vgpu_error_set(err, -EPROTO, "etcd keepalive of lease %" PRId64 ": %s", id, msg);
                json_object_put(answer);
                return r;
        }
        /* an expired lease answers without TTL (proto3 omits 0) */
        int64_t ttl = etcd_json_int64(result, "TTL");
        json_object_put(answer);
        if (ret_ttl)
                *ret_ttl = ttl > 0 ? ttl : 0;
        return 0;
}

_public_ int vgpu_etcd_lease_revoke(struct vgpu_etcd *e, int64_t id, struct vgpu_error *err) {
        if (!e || id == 0)
                return vgpu_error_set(err, -EINVAL, "etcd revoke: no lease");
        if (e->grpc)
                return etcd_grpc_lease(e, "/etcdserverpb.Lease/LeaseRevoke", 0, id, NULL, NULL, err);
        json_object *body = id_body("ID", id), *answer = NULL;
        if (!body)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        int r = etcd_call(e, "/v3/lease/revoke", body, true, &answer, err);
        json_object_put(body);
        json_object_put(answer);
        return r;
}
