/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd-grpc.c — etcd's own gRPC API (etcdserverpb, over HTTP/2 through libcurl): the framing,
 * the status trailers, and the key-value, txn and lease calls written as protobuf (protobuf.h).
 *
 * Why not only the JSON gateway: measured with etcd's pprof under bench/fleet.sh (4 brokers,
 * 688 placements/s), the gateway was two thirds of the leader's CPU: jsonpb decoding every txn
 * and re-encoding every watch event for every watcher, then a loopback gRPC call per request.
 * The raft and storage work the fleet needs was under a tenth. The gateway stays as the other
 * transport (VGPU_ETCD_TRANSPORT=json, or a libcurl without HTTP/2); both answer through the
 * same public calls and the same tests.
 *
 * Field numbers are etcd's (api/etcdserverpb/rpc.proto, api/mvccpb/kv.proto, 3.4 to 3.6).
 * proto3 leaves out fields at their zero value in both directions: a failed txn has no
 * `succeeded`, an expired lease's keepalive no TTL, a put event no type.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "etcd-internal.h"

/* ---- transport ---- */

size_t etcd_grpc_header(char *p, size_t size, size_t nmemb, void *userdata) {
        struct grpc_status *st = userdata;
        size_t n = size * nmemb;
        char line[512];
        size_t len = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (strncasecmp(line, "grpc-status:", 12) == 0) {
                st->code = atoi(line + 12 + strspn(line + 12, " "));
                st->have_code = true;
        } else if (strncasecmp(line, "grpc-message:", 13) == 0) {
                /* percent-encoded (gRPC over HTTP/2, "Responses") */
                const char *s = line + 13 + strspn(line + 13, " ");
                size_t o = 0;
                for (; *s && o < sizeof(st->message) - 1; s++) {
                        unsigned c;
                        if (s[0] == '%' && s[1] && s[2] && sscanf(s + 1, "%2x", &c) == 1) {
                                st->message[o++] = (char) c;
                                s += 2;
                        } else
                                st->message[o++] = *s;
                }
                st->message[o] = '\0';
        }
        return n;
}

uint8_t *etcd_grpc_frame(const struct pb_writer *msg, size_t *ret_len) {
        uint8_t *f = malloc(msg->len + 5);
        if (!f)
                return NULL;
        f[0] = 0; /* not compressed */
        f[1] = (uint8_t) (msg->len >> 24);
        f[2] = (uint8_t) (msg->len >> 16);
        f[3] = (uint8_t) (msg->len >> 8);
        f[4] = (uint8_t) msg->len;
        if (msg->len > 0)
                memcpy(f + 5, msg->data, msg->len);
        *ret_len = msg->len + 5;
        return f;
}

size_t etcd_grpc_next_frame(const uint8_t *data, size_t len, const uint8_t **ret_msg, size_t *ret_msg_len) {
        if (len < 5)
                return 0;
        size_t n = (size_t) data[1] << 24 | (size_t) data[2] << 16 | (size_t) data[3] << 8 | data[4];
        if (len - 5 < n)
                return 0;
        *ret_msg = data + 5;
        *ret_msg_len = n;
        return n + 5;
}

int etcd_grpc_unframe(const char *data, size_t len, uint8_t **ret, size_t *ret_len) {
        const uint8_t *msg;
        size_t n;
        /* compressed frames (flag 1) only come when asked for with grpc-accept-encoding */
        if (!data || etcd_grpc_next_frame((const uint8_t *) data, len, &msg, &n) == 0 || data[0] != 0)
                return -EBADMSG;
        *ret = malloc(n + 1);
        if (!*ret)
                return -ENOMEM;
        if (n > 0)
                memcpy(*ret, msg, n);
        *ret_len = n;
        return 0;
}

/* ---- messages read ---- */

/* ResponseHeader { cluster_id = 1; member_id = 2; revision = 3; raft_term = 4; } */
static int64_t header_revision(const struct pb_field *f) {
        struct pb_reader rd = pb_reader_new(f->data, f->len);
        struct pb_field h;
        while (pb_next(&rd, &h) > 0)
                if (h.number == 3 && h.wire == PB_VARINT)
                        return (int64_t) h.varint;
        return 0;
}

/* the header (field 1) of any response */
static int64_t response_revision(const uint8_t *p, size_t n) {
        struct pb_reader rd = pb_reader_new(p, n);
        struct pb_field f;
        while (pb_next(&rd, &f) > 0)
                if (f.number == 1 && f.wire == PB_LEN)
                        return header_revision(&f);
        return 0;
}

int etcd_pb_next_body_field(struct pb_reader *rd, struct pb_field *f, int64_t *revision) {
        int r;
        while ((r = pb_next(rd, f)) > 0 && f->number == 1 && f->wire == PB_LEN)
                *revision = header_revision(f);
        return r;
}

/* KeyValue { key = 1; create_revision = 2; mod_revision = 3; version = 4; value = 5; lease = 6; } */
int etcd_pb_kv(const uint8_t *p, size_t n, struct vgpu_etcd_kv *ret) {
        struct pb_reader rd = pb_reader_new(p, n);
        struct pb_field f;
        int r;
        *ret = (struct vgpu_etcd_kv){};
        while ((r = pb_next(&rd, &f)) > 0) {
                if (f.wire == PB_LEN && (f.number == 1 || f.number == 5)) {
                        char **dst = f.number == 1 ? &ret->key : &ret->value;
                        free(*dst);
                        if (!(*dst = pb_strndup(&f, f.number == 5 ? &ret->value_len : NULL))) {
                                etcd_kv_clear(ret);
                                return -ENOMEM;
                        }
                } else if (f.wire == PB_VARINT) {
                        int64_t v = (int64_t) f.varint;
                        if (f.number == 2)
                                ret->create_revision = v;
                        else if (f.number == 3)
                                ret->mod_revision = v;
                        else if (f.number == 4)
                                ret->version = v;
                        else if (f.number == 6)
                                ret->lease = v;
                }
        }
        /* an empty value is left out: still a value */
        if (r == 0 && ret->key && !ret->value && !(ret->value = calloc(1, 1)))
                r = -ENOMEM;
        if (r < 0 || !ret->key) {
                etcd_kv_clear(ret);
                return r < 0 ? r : -EBADMSG;
        }
        return 0;
}

/* RangeResponse { header = 1; repeated KeyValue kvs = 2; more = 3; count = 4; } */
static int pb_range(const uint8_t *p, size_t n, struct vgpu_etcd_range *ret) {
        struct pb_reader rd = pb_reader_new(p, n);
        struct pb_field f;
        size_t allocated = 0;
        int r;
        *ret = (struct vgpu_etcd_range){};
        while ((r = etcd_pb_next_body_field(&rd, &f, &ret->revision)) > 0) {
                if (f.number == 2 && f.wire == PB_LEN) {
                        if (!GREEDY_REALLOC(ret->kvs, allocated, ret->n + 1)) {
                                r = -ENOMEM;
                                break;
                        }
                        if ((r = etcd_pb_kv(f.data, f.len, &ret->kvs[ret->n])) < 0)
                                break;
                        ret->n++;
                } else if (f.number == 3 && f.wire == PB_VARINT)
                        ret->more = f.varint != 0;
        }
        if (r < 0) {
                vgpu_etcd_range_free(ret);
                return r;
        }
        return 0;
}

/* ---- requests written ---- */

static void put_key(struct pb_writer *w, unsigned key_field, const char *key, bool prefix) {
        pb_put_bytes(w, key_field, key, strlen(key));
        if (prefix) {
                _cleanup_free_ char *end = etcd_prefix_end(key);
                if (!end)
                        w->oom = true;
                else /* "\0" (every key from key on) is one zero byte */
                        pb_put_bytes(w, key_field + 1, end, *end ? strlen(end) : 1);
        }
}

/* RangeRequest { key = 1; range_end = 2; limit = 3; revision = 4; ...; min_mod_revision = 10; } */
static void range_request(struct pb_writer *w, const char *key, bool prefix, int64_t revision,
                          int64_t min_mod_revision) {
        put_key(w, 1, key, prefix);
        if (revision > 0)
                pb_put_varint(w, 4, (uint64_t) revision);
        if (min_mod_revision > 0)
                pb_put_varint(w, 10, (uint64_t) min_mod_revision);
}

/* PutRequest { key = 1; value = 2; lease = 3; } */
static void put_request(struct pb_writer *w, const char *key, const char *value, int64_t lease) {
        pb_put_bytes(w, 1, key, strlen(key));
        if (value && *value)
                pb_put_bytes(w, 2, value, strlen(value));
        if (lease != 0)
                pb_put_varint(w, 3, (uint64_t) lease);
}

uint8_t *etcd_grpc_watch_request(const char *prefix, int64_t start_revision, bool prev_kv, size_t *ret_len) {
        /* WatchRequest { create_request = 1; } WatchCreateRequest { key = 1; range_end = 2;
         * start_revision = 3; prev_kv = 6; } */
        struct pb_writer create = {}, req = {};
        put_key(&create, 1, prefix, true);
        if (start_revision > 0)
                pb_put_varint(&create, 3, (uint64_t) start_revision);
        if (prev_kv)
                pb_put_varint(&create, 6, 1);
        pb_put_message(&req, 1, &create);
        uint8_t *framed = req.oom ? NULL : etcd_grpc_frame(&req, ret_len);
        pb_writer_free(&create);
        pb_writer_free(&req);
        return framed;
}

static int call(struct vgpu_etcd *e, const char *method, struct pb_writer *w, bool idempotent, uint8_t **ret,
                size_t *ret_len, struct vgpu_error *err) {
        int r = etcd_grpc_call(e, method, w, idempotent, ret, ret_len, err);
        pb_writer_free(w);
        return r;
}

int etcd_grpc_range(struct vgpu_etcd *e, const char *key, bool prefix, int64_t revision,
                    int64_t min_mod_revision, struct vgpu_etcd_range *ret, struct vgpu_error *err) {
        struct pb_writer w = {};
        range_request(&w, key, prefix, revision, min_mod_revision);
        _cleanup_free_ uint8_t *msg = NULL;
        size_t len = 0;
        int r = call(e, "/etcdserverpb.KV/Range", &w, true, &msg, &len, err);
        if (r < 0)
                return r;
        r = pb_range(msg, len, ret);
        return r < 0 ? vgpu_error_set(err, r, "etcd range '%s': bad answer", key) : 0;
}

/* a write answered by its header alone: the revision it made */
static int write_call(struct vgpu_etcd *e, const char *method, struct pb_writer *w, int64_t *ret_revision,
                      struct vgpu_error *err) {
        _cleanup_free_ uint8_t *msg = NULL;
        size_t len = 0;
        /* a put of the same value twice, or a delete twice, leaves the same state: safe to send
         * again elsewhere */
        int r = call(e, method, w, true, &msg, &len, err);
        if (r >= 0 && ret_revision)
                *ret_revision = response_revision(msg, len);
        return r;
}

int etcd_grpc_put(struct vgpu_etcd *e, const char *key, const char *value, int64_t lease,
                  int64_t *ret_revision, struct vgpu_error *err) {
        struct pb_writer w = {};
        put_request(&w, key, value, lease);
        return write_call(e, "/etcdserverpb.KV/Put", &w, ret_revision, err);
}

/* DeleteRangeRequest { key = 1; range_end = 2; prev_kv = 3; } */
int etcd_grpc_delete(struct vgpu_etcd *e, const char *key, bool prefix, int64_t *ret_revision,
                     struct vgpu_error *err) {
        struct pb_writer w = {};
        put_key(&w, 1, key, prefix);
        return write_call(e, "/etcdserverpb.KV/DeleteRange", &w, ret_revision, err);
}

/* CompactionRequest { revision = 1; physical = 2; } */
int etcd_grpc_compact(struct vgpu_etcd *e, int64_t revision, struct vgpu_error *err) {
        struct pb_writer w = {};
        pb_put_varint(&w, 1, (uint64_t) revision);
        pb_put_varint(&w, 2, 1);
        return write_call(e, "/etcdserverpb.KV/Compact", &w, NULL, err);
}

/* Compare { result = 1; target = 2; key = 3; version = 4 | create_revision = 5 | mod_revision = 6 |
 * value = 7 | lease = 8; } (the enums' numbers are vgpu/etcd.h's) */
static int compare_message(struct pb_writer *w, const struct vgpu_etcd_compare *c) {
        if (!c->key || (unsigned) c->target > VGPU_ETCD_LEASE || (unsigned) c->result > VGPU_ETCD_NOT_EQUAL)
                return -EINVAL;
        if (c->result != VGPU_ETCD_EQUAL)
                pb_put_varint(w, 1, c->result);
        if (c->target != VGPU_ETCD_VERSION)
                pb_put_varint(w, 2, c->target);
        pb_put_bytes(w, 3, c->key, strlen(c->key));
        /* a oneof member is sent even at zero: which one is set is the target */
        static const unsigned fields[] = { [VGPU_ETCD_VERSION] = 4,
                                           [VGPU_ETCD_CREATE] = 5,
                                           [VGPU_ETCD_MOD] = 6,
                                           [VGPU_ETCD_VALUE] = 7,
                                           [VGPU_ETCD_LEASE] = 8 };
        if (c->target == VGPU_ETCD_VALUE)
                pb_put_bytes(w, fields[c->target], strempty(c->value), strlen(strempty(c->value)));
        else
                pb_put_varint(w, fields[c->target], (uint64_t) c->number);
        return 0;
}

/* RequestOp { request_range = 1 | request_put = 2 | request_delete_range = 3; } */
static int op_message(struct pb_writer *w, const struct vgpu_etcd_op *op) {
        if (!op->key)
                return -EINVAL;
        struct pb_writer sub = {};
        unsigned field;
        switch (op->kind) {
        case VGPU_ETCD_OP_PUT:
                put_request(&sub, op->key, op->value, op->lease);
                field = 2;
                break;
        case VGPU_ETCD_OP_DELETE:
                put_key(&sub, 1, op->key, op->prefix);
                field = 3;
                break;
        case VGPU_ETCD_OP_RANGE:
                range_request(&sub, op->key, op->prefix, 0, 0);
                field = 1;
                break;
        default:
                return -EINVAL;
        }
        pb_put_message(w, field, &sub);
        pb_writer_free(&sub);
        return 0;
}

static int ops_message(struct pb_writer *w, unsigned field, const struct vgpu_etcd_op *ops, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct pb_writer op = {};
                int r = op_message(&op, &ops[i]);
                if (r >= 0)
                        pb_put_message(w, field, &op);
                pb_writer_free(&op);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* TxnResponse { header = 1; succeeded = 2; repeated ResponseOp responses = 3; }: the ranges of
 * the branch taken into res */
static int txn_response(const uint8_t *p, size_t n, struct vgpu_etcd_txn_result *res) {
        struct pb_reader rd = pb_reader_new(p, n);
        struct pb_field f;
        size_t allocated = 0;
        int r;
        while ((r = etcd_pb_next_body_field(&rd, &f, &res->revision)) > 0) {
                if (f.number == 2 && f.wire == PB_VARINT)
                        res->succeeded = f.varint != 0;
                else if (f.number == 3 && f.wire == PB_LEN) {
                        struct pb_reader op = pb_reader_new(f.data, f.len);
                        struct pb_field o;
                        while ((r = pb_next(&op, &o)) > 0) {
                                if (o.number != 1 || o.wire != PB_LEN) /* response_range */
                                        continue;
                                if (!GREEDY_REALLOC(res->ranges, allocated, res->n_ranges + 1))
                                        return -ENOMEM;
                                if ((r = pb_range(o.data, o.len, &res->ranges[res->n_ranges])) < 0)
                                        return r;
                                res->n_ranges++;
                        }
                        if (r < 0)
                                return r;
                }
        }
        /* a range inside a txn has no header of its own: the txn's revision */
        for (size_t i = 0; r >= 0 && i < res->n_ranges; i++)
                res->ranges[i].revision = res->revision;
        return r;
}

int etcd_grpc_txn(struct vgpu_etcd *e, const struct vgpu_etcd_compare *cmp, size_t n_cmp,
                  const struct vgpu_etcd_op *success, size_t n_success, const struct vgpu_etcd_op *failure,
                  size_t n_failure, struct vgpu_etcd_txn_result *ret, struct vgpu_error *err) {
        /* TxnRequest { repeated Compare compare = 1; repeated RequestOp success = 2, failure = 3; } */
        struct pb_writer w = {};
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n_cmp; i++) {
                struct pb_writer c = {};
                r = compare_message(&c, &cmp[i]);
                if (r >= 0)
                        pb_put_message(&w, 1, &c);
                pb_writer_free(&c);
        }
        if (r >= 0)
                r = ops_message(&w, 2, success, n_success);
        if (r >= 0)
                r = ops_message(&w, 3, failure, n_failure);
        if (r < 0) {
                pb_writer_free(&w);
                return vgpu_error_set(err, r, "etcd txn: a compare or op without key or with a bad kind");
        }
        _cleanup_free_ uint8_t *msg = NULL;
        size_t len = 0;
        /* not idempotent: a txn sent and not answered may have been applied; the caller re-reads */
        r = call(e, "/etcdserverpb.KV/Txn", &w, false, &msg, &len, err);
        if (r < 0)
                return r;
        struct vgpu_etcd_txn_result res = {};
        r = txn_response(msg, len, &res);
        return etcd_txn_result_return(&res, r, ret, err);
}

/* ---- leases ---- */

/*
 * LeaseGrantRequest { TTL = 1; ID = 2; } -> LeaseGrantResponse { header = 1; ID = 2; TTL = 3; error = 4; }
 * LeaseKeepAliveRequest { ID = 1; }       -> LeaseKeepAliveResponse { header = 1; ID = 2; TTL = 3; }
 * LeaseRevokeRequest { ID = 1; }          -> LeaseRevokeResponse { header = 1; }
 * ttl_s > 0 asks a grant; otherwise id is the lease. LeaseKeepAlive is a stream: one request
 * sent and the stream closed, its one answer read, as the gateway does per POST.
 */
int etcd_grpc_lease(struct vgpu_etcd *e, const char *method, int64_t ttl_s, int64_t id, int64_t *ret_id,
                    int64_t *ret_ttl, struct vgpu_error *err) {
        struct pb_writer w = {};
        if (ttl_s > 0)
                pb_put_varint(&w, 1, (uint64_t) ttl_s);
        else
                pb_put_varint(&w, 1, (uint64_t) id);
        _cleanup_free_ uint8_t *msg = NULL;
        size_t len = 0;
        /* a grant answered nowhere leaves at most an unused lease, which expires */
        int r = call(e, method, &w, true, &msg, &len, err);
        if (r < 0)
                return r;
        struct pb_reader rd = pb_reader_new(msg, len);
        struct pb_field f;
        int64_t got_id = 0, ttl = 0;
        _cleanup_free_ char *error = NULL;
        while (pb_next(&rd, &f) > 0) {
                if (f.number == 2 && f.wire == PB_VARINT)
                        got_id = (int64_t) f.varint;
                else if (f.number == 3 && f.wire == PB_VARINT)
                        ttl = (int64_t) f.varint;
                else if (f.number == 4 && f.wire == PB_LEN && !error)
                        error = pb_strndup(&f, NULL);
        }
        if (ttl_s > 0 && got_id == 0)
                return vgpu_error_set(err, -EPROTO, "etcd lease grant: no lease id in the answer%s%s",
                                      error ? ": " : "", strempty(error));
        if (ret_id)
                *ret_id = got_id;
        /* an expired lease answers without TTL (proto3 leaves 0 out) */
        if (ret_ttl)
                *ret_ttl = ttl > 0 ? ttl : 0;
        return 0;
}
