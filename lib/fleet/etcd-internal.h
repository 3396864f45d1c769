/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* etcd-internal.h — what the etcd client's files share: the client, libcurl, the JSON codec. */
#pragma once

#include <curl/curl.h>
#include <json-c/json.h>

#include "basic/curl-dl.h"
#include "basic/error-util.h"
#include "vgpu/etcd.h"

struct vgpu_etcd {
        char **endpoints; /* without trailing '/' */
        size_t n_endpoints, current;
        char *ca_file, *cert_file, *key_file, *user, *password;
        long timeout_ms;
        char *token; /* etcd auth token, NULL until authenticated */
        CURL *curl;  /* kept for its connection cache */
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
