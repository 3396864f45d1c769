/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd.h — an etcd v3 client for the fleet layer (vgpud's membership, vgpu-broker).
 *
 * It speaks etcd's gRPC API over HTTP/2 with libcurl (or, with VGPU_ETCD_TRANSPORT=json or a
 * libcurl without HTTP/2, its JSON gateway: POST /v3/kv/txn, /v3/watch...), both on etcd 3.4,
 * 3.5 and 3.6; Debian ships no C v3 client. Keys and values are bytes on the wire; here keys are
 * C strings and values NUL-terminated buffers. Revisions and lease ids are int64 (lease ids
 * exceed 2^53: through the gateway they travel as JSON strings and never go through a double).
 *
 * Every function returns 0 or a negative errno and fills err. A request that cannot reach an
 * endpoint (connection refused, timed out) is tried on the next endpoint; after every endpoint
 * failed the call returns -ECONNREFUSED or -ETIMEDOUT. A txn or put whose request was sent but
 * not answered (-ETIMEDOUT) has an unknown outcome: it is not retried, the caller re-reads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/cleanup.h"
#include "vgpu/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vgpu_etcd; /* one client; not thread-safe: one per thread */

struct vgpu_etcd_config {
        const char *const *endpoints; /* "http://127.0.0.1:23790", NULL-terminated; rotated on error */
        const char *ca_file, *cert_file, *key_file; /* TLS, each optional */
        const char *user, *password; /* etcd auth (token from /v3/auth/authenticate), optional */
        int timeout_ms;              /* per request; 0 = 2000 */
};

int vgpu_etcd_new(const struct vgpu_etcd_config *c, struct vgpu_etcd **ret, struct vgpu_error *err);
void vgpu_etcd_free(struct vgpu_etcd *e);
VGPU_DEFINE_FREEP(struct vgpu_etcd, vgpu_etcd_free)

struct vgpu_etcd_kv {
        char *key;
        char *value; /* decoded from base64; NUL-terminated (value_len excludes the NUL) */
        size_t value_len;
        int64_t create_revision, mod_revision, version, lease;
};

struct vgpu_etcd_range {
        struct vgpu_etcd_kv *kvs;
        size_t n;
        int64_t revision; /* the store's revision when read (response header) */
        bool more;
};
void vgpu_etcd_range_free(struct vgpu_etcd_range *r);

int vgpu_etcd_get(struct vgpu_etcd *e, const char *key, struct vgpu_etcd_range *ret, struct vgpu_error *err);
/* every key under prefix, at revision (0 = now); min_mod_revision 0 = no filter */
int vgpu_etcd_range_prefix(struct vgpu_etcd *e, const char *prefix, int64_t revision,
                           int64_t min_mod_revision, struct vgpu_etcd_range *ret, struct vgpu_error *err);
int vgpu_etcd_put(struct vgpu_etcd *e, const char *key, const char *value, int64_t lease,
                  int64_t *ret_revision, struct vgpu_error *err);
int vgpu_etcd_delete(struct vgpu_etcd *e, const char *key, bool prefix, int64_t *ret_revision,
                     struct vgpu_error *err);

/* LEASE: the lease the key is bound to (0 when none, or when the key is absent) */
enum vgpu_etcd_target {
        VGPU_ETCD_VERSION,
        VGPU_ETCD_CREATE,
        VGPU_ETCD_MOD,
        VGPU_ETCD_VALUE,
        VGPU_ETCD_LEASE
};
enum vgpu_etcd_result { VGPU_ETCD_EQUAL, VGPU_ETCD_GREATER, VGPU_ETCD_LESS, VGPU_ETCD_NOT_EQUAL };
struct vgpu_etcd_compare {
        const char *key;
        enum vgpu_etcd_target target;
        enum vgpu_etcd_result result;
        int64_t number;    /* VERSION, CREATE, MOD, LEASE */
        const char *value; /* VALUE */
};
enum vgpu_etcd_op_kind { VGPU_ETCD_OP_PUT, VGPU_ETCD_OP_DELETE, VGPU_ETCD_OP_RANGE };
struct vgpu_etcd_op {
        enum vgpu_etcd_op_kind kind;
        const char *key;
        const char *value; /* PUT */
        int64_t lease;     /* PUT; 0 = none */
        bool prefix;       /* DELETE, RANGE: every key under key */
};
struct vgpu_etcd_txn_result {
        bool succeeded;
        int64_t revision;
        struct vgpu_etcd_range *ranges; /* one per RANGE op of the branch taken */
        size_t n_ranges;
};
void vgpu_etcd_txn_result_free(struct vgpu_etcd_txn_result *r);
int vgpu_etcd_txn(struct vgpu_etcd *e, const struct vgpu_etcd_compare *cmp, size_t n_cmp,
                  const struct vgpu_etcd_op *success, size_t n_success, const struct vgpu_etcd_op *failure,
                  size_t n_failure, struct vgpu_etcd_txn_result *ret, struct vgpu_error *err);

int vgpu_etcd_lease_grant(struct vgpu_etcd *e, int ttl_s, int64_t *ret_id, struct vgpu_error *err);
/* *ret_ttl = remaining TTL, 0 when the lease is gone (then grant a new one and republish) */
int vgpu_etcd_lease_keepalive(struct vgpu_etcd *e, int64_t id, int64_t *ret_ttl, struct vgpu_error *err);
int vgpu_etcd_lease_revoke(struct vgpu_etcd *e, int64_t id, struct vgpu_error *err);

struct vgpu_etcd_event {
        bool deleted;
        struct vgpu_etcd_kv kv;
        struct vgpu_etcd_kv prev; /* prev.key NULL if none */
};
/* Called per watch response that carries events; revision is the mod_revision of the last event
 * (resume from revision + 1). Return 0 to go on, anything else stops the watch and is returned.
 * The events are freed when the callback returns. */
typedef int (*vgpu_etcd_watch_fn)(const struct vgpu_etcd_event *ev, size_t n, int64_t revision,
                                  void *userdata);
/* Blocks: watch prefix from start_revision (prev_kv on). Returns the callback's non-zero value, -ESTALE
 * with *ret_compact_revision set when the start was compacted (re-list then re-watch), -errno when the
 * connection is lost (the caller resumes from the last revision + 1). *stop (may be NULL) is polled at
 * least every 200 ms so another thread can end it: returns 0 then. */
int vgpu_etcd_watch(struct vgpu_etcd *e, const char *prefix, int64_t start_revision, vgpu_etcd_watch_fn fn,
                    void *userdata, const volatile int *stop, int64_t *ret_compact_revision,
                    struct vgpu_error *err);
/* The same with options. VGPU_ETCD_WATCH_NO_PREV_KV: prev_kv off (every ev->prev.key NULL), for a
 * watcher that keeps the values itself (vgpu-broker's cache): each event then costs etcd no read
 * of the previous value and every watcher no copy of it. */
enum { VGPU_ETCD_WATCH_NO_PREV_KV = 1 << 0 };
int vgpu_etcd_watch_flags(struct vgpu_etcd *e, const char *prefix, int64_t start_revision, unsigned flags,
                          vgpu_etcd_watch_fn fn, void *userdata, const volatile int *stop,
                          int64_t *ret_compact_revision, struct vgpu_error *err);

/* Additions to the contract. */

/* Compact the key-value history up to revision (physical: waits until applied). Watches and
 * ranges from before it then fail with -ESTALE. */
int vgpu_etcd_compact(struct vgpu_etcd *e, int64_t revision, struct vgpu_error *err);
/* The endpoint the next request goes to (after rotation). */
const char *vgpu_etcd_endpoint(const struct vgpu_etcd *e);
/* Go on with the next endpoint: a member that hangs (stopped, cut off without a reset) answers
 * no error, so a long watch on it is ended and resumed elsewhere by the caller. */
void vgpu_etcd_next_endpoint(struct vgpu_etcd *e);

#ifdef __cplusplus
}
#endif
