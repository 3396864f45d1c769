/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api.h — the HTTP API without HTTP: a request (method, path, query, body, the caller's access)
 * goes in, a reply (status, JSON body) comes out. http.c feeds it from libmicrohttpd; tests and
 * the fuzz harness feed it directly. Every body is JSON: the objects of `vgpuctl --json`, or
 * {"error": MESSAGE} with a 4xx/5xx status.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "output.h"
#include "vgpu/error.h"
#include "vgpud.h"

#define API_BODY_MAX  (1u << 20) /* request bodies above this get 413 */
#define API_QUERY_MAX 16

enum listener_kind {
        LISTENER_LOCAL = 1 << 0,   /* the UNIX socket */
        LISTENER_TCP_API = 1 << 1, /* the broker's TCP listener (bearer token) */
        LISTENER_METRICS = 1 << 2, /* the Prometheus listener: /metrics only */
};

struct api_query {
        const char *key;
        const char *value; /* NULL for "?dry_run" without "=" */
};

struct api_request {
        struct vgpud *d;
        enum listener_kind listener;
        const char *method;
        const char *path;
        struct api_query query[API_QUERY_MAX];
        size_t n_query;
        bool query_overflow; /* more arguments than API_QUERY_MAX */
        const char *body;    /* NUL-terminated (the NUL not counted) */
        size_t body_size;
        enum vgpud_access access;
        const char *caller; /* "uid 1000 (pid 42)", "token", for logs */
        const char *peer;   /* its stable part, "uid 1000", "client 127.0.0.1": whose
                                         * denials are coalesced (NULL: caller) */
};

struct api_reply {
        unsigned status;
        char *body; /* malloc()ed */
        size_t size;
        const char *content_type; /* static */
        char allow[32];           /* for 405: the methods allowed, "" otherwise */
        bool want_auth;           /* 401: add WWW-Authenticate: Bearer */
};

/* One query argument, in order; false (and query_overflow set) past API_QUERY_MAX. */
bool api_request_add_query(struct api_request *req, const char *key, const char *value);
/* path?k=v&k2: path and arguments split in place, as MHD hands them over (without its URL
 * decoding); for callers without MHD, the fuzz harness and tests. */
void api_request_set_target(struct api_request *req, char *target);

/* Route, check access and query, run the handler. Always fills reply. */
void api_dispatch(const struct api_request *req, struct api_reply *reply);
void api_reply_done(struct api_reply *reply);

/* ---- for the handlers ---- */

/* A JSON body being written: begin, print with output.h, end. */
struct json_body {
        FILE *f;
        char *buf;
        size_t size;
        struct out *o;
};
int json_begin(struct json_body *b);
/* The same in the form the query asks for: ?format=json (default) or text (the table vgpuctl
 * prints), ?pretty for indented JSON. vgpuctl asks for its own form and prints the body as is,
 * so its output through the daemon is the direct run's. -EINVAL with a 400 reply when bad. */
int output_begin(struct json_body *b, const struct api_request *req, struct api_reply *reply);
/* Finish b into reply with status (Content-Type: JSON, or text/plain for ?format=text). */
int json_end(struct json_body *b, struct api_reply *reply, unsigned status);

/* {"error": "..."} with status; returns 0 so handlers can `return reply_error(...)`. */
int reply_error(struct api_reply *reply, unsigned status, const char *fmt, ...) _printf_(3, 4);
/* A library error: its message, with a status from its errno. */
int reply_lib_error(struct api_reply *reply, const struct vgpu_error *err);
unsigned http_status_for_errno(int negative_errno);
/* The host could not be read (a scan for a GET): 500 whatever its errno, as it is no fault of
 * the request's; EINVAL from a corrupt sysfs file is not a 400. */
int reply_host_error(struct api_reply *reply, const struct vgpu_error *err);

/* The query argument key: 1 and *ret set when given ("", "1", "true", "yes" / "0", "false",
 * "no"), 0 when absent, -EINVAL with a 400 reply when malformed. */
int query_bool(const struct api_request *req, const char *key, bool *ret, struct api_reply *reply);
/* The value of key, or NULL. */
const char *query_string(const struct api_request *req, const char *key);

/* handlers: each returns 0 with reply filled (errors included) */
int handle_gpus(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_types(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_instances(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_slices(const struct api_request *req, const char *arg, struct api_reply *reply); /* slices.c */
int handle_health(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_events(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_metrics(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_create(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_remove(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_apply(const struct api_request *req, const char *arg, struct api_reply *reply);
/* handlers-config.c: GET/PUT /v1/config */
int handle_config_get(const struct api_request *req, const char *arg, struct api_reply *reply);
int handle_config_put(const struct api_request *req, const char *arg, struct api_reply *reply);
