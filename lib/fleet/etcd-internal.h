/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* etcd-internal.h — what the etcd client's files share: the client, libcurl, the JSON codec. */
#pragma once

#include <curl/curl.h>
#include <json-c/json.h>

#include "basic/curl-dl.h"
#include "basic/error-util.h"
#include "protobuf.h"
#include "vgpu/etcd.h"

struct vgpu_etcd {
        char **endpoints; /* without trailing '/' */
        size_t n_endpoints, current;
        char *ca_file, *cert_file, *key_file, *user, *password;
        long timeout_ms;
        char *token;  /* etcd auth token, NULL until authenticated */
        CURL *curl;   /* kept for its connection cache */
        bool grpc;    /* etcd's gRPC API over HTTP/2 (etcd-grpc.c), else the JSON gateway */
        bool h2_live; /* curl holds an HTTP/2 connection to the current endpoint (etcd_setup_handle) */
        const struct curl_dl *dl;
};

/* Apply the options every request shares (TLS, timeouts, headers are the caller's) to h. */
void etcd_setup_handle(struct vgpu_etcd *e, CURL *h, const char *url, long timeout_ms);
/* The headers of a request (JSON, the auth token, require a leader), or NULL. */
struct curl_slist *etcd_headers(struct vgpu_etcd *e);
/* Authenticate (user/password) and store the token. */
int etcd_authenticate(struct vgpu_etcd *e, struct vgpu_error *err);

/* POST body (JSON) to path on the current endpoint, rotating over the endpoints on connection
 * errors (and on timeouts and "no leader" when idempotent); *ret is the parsed answer. An error
 * answer of the gateway becomes -errno from its gRPC code with etcd's message. */
int etcd_call(struct vgpu_etcd *e, const char *path, json_object *body, bool idempotent, json_object **ret,
              struct vgpu_error *err);
/* -errno for a gRPC status code. */
int etcd_grpc_errno(int code);

/* A txn's answer, read into *res with result r, handed to the caller: into *ret (or freed when
 * ret is NULL) and 0, or freed and r with "bad answer" in err (etcd-txn.c, both transports). */
int etcd_txn_result_return(struct vgpu_etcd_txn_result *res, int r, struct vgpu_etcd_txn_result *ret,
                           struct vgpu_error *err);

/* ---- gRPC (etcd-grpc.c) ---- */

/* The same as etcd_call() for a gRPC method ("/etcdserverpb.KV/Txn"): msg framed and sent, the
 * response message (unframed, malloc'ed) into *ret. */
int etcd_grpc_call(struct vgpu_etcd *e, const char *method, const struct pb_writer *msg, bool idempotent,
                   uint8_t **ret, size_t *ret_len, struct vgpu_error *err);
/* What the header callback collects: grpc-status and grpc-message (headers or trailers). */
struct grpc_status {
        bool have_code;
        int code;
        char message[256];
};
size_t etcd_grpc_header(char *p, size_t size, size_t nmemb, void *userdata);
/* msg with its 5-byte gRPC frame (uncompressed, length big-endian), malloc'ed; NULL for memory. */
uint8_t *etcd_grpc_frame(const struct pb_writer *msg, size_t *ret_len);
/* The one message of a unary answer, copied out of its frame: 0, -EBADMSG, -ENOMEM. */
int etcd_grpc_unframe(const char *data, size_t len, uint8_t **ret, size_t *ret_len);
/* Where a buffer of frames holds a whole one: its message and the bytes it takes, else 0. */
size_t etcd_grpc_next_frame(const uint8_t *data, size_t len, const uint8_t **ret_msg, size_t *ret_msg_len);
/* Messages of etcd's API (rpc.proto, kv.proto) read here: a KeyValue, and the next field of a
 * response but its header (field 1), whose revision goes to *revision (pb_next's result). */
int etcd_pb_kv(const uint8_t *p, size_t n, struct vgpu_etcd_kv *ret);
int etcd_pb_next_body_field(struct pb_reader *rd, struct pb_field *f, int64_t *revision);
/* The framed WatchRequest that creates a watch on prefix; NULL for memory. */
uint8_t *etcd_grpc_watch_request(const char *prefix, int64_t start_revision, bool prev_kv, size_t *ret_len);
/* The calls over gRPC (the public functions dispatch to them when e->grpc). */
int etcd_grpc_range(struct vgpu_etcd *e, const char *key, bool prefix, int64_t revision,
                    int64_t min_mod_revision, struct vgpu_etcd_range *ret, struct vgpu_error *err);
int etcd_grpc_put(struct vgpu_etcd *e, const char *key, const char *value, int64_t lease,
                  int64_t *ret_revision, struct vgpu_error *err);
int etcd_grpc_delete(struct vgpu_etcd *e, const char *key, bool prefix, int64_t *ret_revision,
                     struct vgpu_error *err);
int etcd_grpc_compact(struct vgpu_etcd *e, int64_t revision, struct vgpu_error *err);
int etcd_grpc_txn(struct vgpu_etcd *e, const struct vgpu_etcd_compare *cmp, size_t n_cmp,
                  const struct vgpu_etcd_op *success, size_t n_success, const struct vgpu_etcd_op *failure,
                  size_t n_failure, struct vgpu_etcd_txn_result *ret, struct vgpu_error *err);
int etcd_grpc_lease(struct vgpu_etcd *e, const char *method, int64_t ttl_s, int64_t id, int64_t *ret_id,
                    int64_t *ret_ttl, struct vgpu_error *err);

/* ---- JSON (etcd-json.c) ---- */
char *etcd_base64_encode(const void *data, size_t len);
/* Decoded bytes, NUL-terminated; NULL on bad input or no memory. */
char *etcd_base64_decode(const char *s, size_t *ret_len);
/* The key just after every key starting with prefix ("\0" = to the end). */
char *etcd_prefix_end(const char *prefix);
int64_t etcd_json_int64(json_object *o, const char *field);
bool etcd_json_bool(json_object *o, const char *field);
json_object *etcd_json_new_int64(int64_t v);
/* Add key (base64) and, with prefix, range_end to o. */
int etcd_json_add_key(json_object *o, const char *key, bool prefix);
int etcd_kv_parse(json_object *o, struct vgpu_etcd_kv *ret);
void etcd_kv_clear(struct vgpu_etcd_kv *kv);
/* A RangeResponse's kvs, more and header.revision. */
int etcd_range_parse(json_object *o, struct vgpu_etcd_range *ret);
int64_t etcd_header_revision(json_object *o);

/* vgpu_etcd_freep comes with the public header */
