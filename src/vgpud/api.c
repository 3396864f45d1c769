/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api.c — routing and the rules every request passes before its handler: the path exists on
 * this listener, the method fits, the caller may do it, the query has only known arguments.
 * Refusals are JSON errors naming what was wrong; denials are logged and counted.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "log.h"

struct route {
        const char *method;
        const char *path; /* exact, or a prefix ending in '/' that takes one argument */
        unsigned listeners;
        enum vgpud_access access;
        const char *query; /* allowed query keys, comma-separated, or NULL */
        int (*handler)(const struct api_request *req, const char *arg, struct api_reply *reply);
};

#define V1 (LISTENER_LOCAL | LISTENER_TCP_API)

static const struct route routes[] = {
        { "GET", "/v1/gpus", V1, ACCESS_READ, NULL, handle_gpus },
        { "GET", "/v1/types", V1, ACCESS_READ, "parent,available", handle_types },
        { "GET", "/v1/instances", V1, ACCESS_READ, NULL, handle_instances },
        { "GET", "/v1/slices", V1, ACCESS_READ, NULL, handle_slices },
        { "POST", "/v1/instances", V1, ACCESS_WRITE, "format,pretty", handle_create },
        { "DELETE", "/v1/instances/", V1, ACCESS_WRITE, "format,pretty", handle_remove },
        { "GET", "/v1/health", V1, ACCESS_READ, "checks", handle_health },
        { "GET", "/v1/events", V1, ACCESS_READ, "since", handle_events },
        { "POST", "/v1/apply", V1, ACCESS_WRITE, "dry_run,force,diff,source,format,pretty", handle_apply },
        { "GET", "/v1/config", V1, ACCESS_READ, NULL, handle_config_get }, /* handlers-config.c */
        { "PUT", "/v1/config", V1, ACCESS_WRITE, "force", handle_config_put },
        { "GET", "/metrics", LISTENER_METRICS | LISTENER_LOCAL, ACCESS_READ, NULL, handle_metrics },
};

int json_begin(struct json_body *b) {
        *b = (struct json_body){};
        if (!(b->f = open_memstream(&b->buf, &b->size)))
                return -ENOMEM;
        if (!(b->o = out_new(b->f, true, false))) {
                fclose(b->f);
                free(b->buf);
                return -ENOMEM;
        }
        return 0;
}

/* ?format and ?pretty are well-formed (checked before the handler changes anything). */
static int output_query_check(const struct api_request *req, bool *ret_json, bool *ret_pretty,
                              struct api_reply *reply) {
        const char *format = query_string(req, "format");
        if (format && !streq(format, "json") && !streq(format, "text")) {
                reply_error(reply, 400, "query argument format='%s': expected json or text", format);
                return -EINVAL;
        }
        *ret_json = !format || streq(format, "json");
        *ret_pretty = false;
        return query_bool(req, "pretty", ret_pretty, reply) < 0 ? -EINVAL : 0;
}

int output_begin(struct json_body *b, const struct api_request *req, struct api_reply *reply) {
        bool json, pretty;
        if (output_query_check(req, &json, &pretty, reply) < 0)
                return -EINVAL;
        *b = (struct json_body){};
        if (!(b->f = open_memstream(&b->buf, &b->size)) || !(b->o = out_new(b->f, json, json && pretty))) {
                if (b->f)
                        fclose(b->f);
                free(b->buf);
                return reply_error(reply, 500, "out of memory"), -ENOMEM;
        }
        return 0;
}

int json_end(struct json_body *b, struct api_reply *reply, unsigned status) {
        bool json = out_is_json(b->o);
        out_free(b->o);
        bool bad = ferror(b->f);
        fclose(b->f);
        if (bad) {
                free(b->buf);
                return reply_error(reply, 500, "out of memory");
        }
        free(reply->body);
        reply->body = b->buf;
        reply->size = b->size;
        reply->status = status;
        reply->content_type = json ? "application/json" : "text/plain; charset=utf-8";
        return 0;
}

static void reply_static(struct api_reply *reply, unsigned status, const char *json) {
        free(reply->body);
        reply->body = strdup(json);
        reply->size = reply->body ? strlen(json) : 0;
        reply->status = status;
        reply->content_type = "application/json";
}

int reply_error(struct api_reply *reply, unsigned status, const char *fmt, ...) {
        char msg[VGPU_ERROR_MESSAGE_MAX + 64];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        struct json_body b;
        if (json_begin(&b) < 0) {
                reply_static(reply, 500, "{\"error\":\"out of memory\"}\n");
                return 0;
        }
        out_open_object(b.o, NULL);
        out_string(b.o, OUT_JSON, "error", NULL, msg);
        out_close_object(b.o);
        if (json_end(&b, reply, status) < 0 || !reply->body)
                reply_static(reply, 500, "{\"error\":\"out of memory\"}\n");
        return 0;
}

unsigned http_status_for_errno(int r) {
        switch (r) {
        case -EINVAL:
        case -EBADMSG:
        case -ERANGE:
        case -ENAMETOOLONG:
                return 400; /* the request (or the file in it) is wrong */
        case -ENOENT:
        case -ENODEV:
        case -ENXIO:
                return 404;
        case -EEXIST:
        case -ENOSPC:
        case -EBUSY:
        case -ENOTEMPTY:
                return 409; /* conflicts with what the host has */
        case -EFBIG:
                return 413; /* a host.yaml over VGPU_CONFIG_SIZE_MAX */
        case -EOPNOTSUPP:
                return 501;
        case -ETIMEDOUT:
                return 504;
        default:
                return 500;
        }
}

int reply_lib_error(struct api_reply *reply, const struct vgpu_error *err) {
        return reply_error(reply, http_status_for_errno(err->code ? err->code : -EIO), "%s",
                           err->message[0] ? err->message : "unknown error");
}

int reply_host_error(struct api_reply *reply, const struct vgpu_error *err) {
        return reply_error(reply, 500, "%s", err->message[0] ? err->message : "reading the host failed");
}

const char *query_string(const struct api_request *req, const char *key) {
        for (size_t i = 0; i < req->n_query; i++)
                if (streq(req->query[i].key, key))
                        return req->query[i].value ? req->query[i].value : "";
        return NULL;
}

int query_bool(const struct api_request *req, const char *key, bool *ret, struct api_reply *reply) {
        const char *v = query_string(req, key);
        if (!v)
                return 0;
        if (!*v || streq(v, "1") || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
                *ret = true;
        else if (streq(v, "0") || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
                *ret = false;
        else {
                reply_error(reply, 400, "query argument %s='%s': expected true or false", key, v);
                return -EINVAL;
        }
        return 1;
}

void api_reply_done(struct api_reply *reply) {
        free(reply->body);
        *reply = (struct api_reply){};
}

static bool route_matches_path(const struct route *r, const char *path, const char **ret_arg) {
        size_t n = strlen(r->path);
        if (r->path[n - 1] != '/') {
                *ret_arg = NULL;
                return streq(path, r->path);
        }
        /* one non-empty path segment after the prefix */
        if (strncmp(path, r->path, n) != 0 || !path[n] || strchr(path + n, '/'))
                return false;
        *ret_arg = path + n;
        return true;
}

/* Is every query key one the route takes? Names the first one that is not. */
static bool query_allowed(const struct route *r, const struct api_request *req, struct api_reply *reply) {
        if (req->query_overflow) {
                reply_error(reply, 400, "more than %d query arguments", API_QUERY_MAX);
                return false;
        }
        for (size_t i = 0; i < req->n_query; i++) {
                const char *k = req->query[i].key;
                bool known = false;
                for (const char *a = r->query; a && *a && !known;) {
                        size_t len = strcspn(a, ",");
                        known = strlen(k) == len && strncmp(a, k, len) == 0;
                        a += len + (a[len] == ',');
                }
                if (!known) {
                        reply_error(reply, 400, "%s %s: unknown query argument '%s' (%s%s)", r->method,
                                    r->path, k, r->query ? "known: " : "it takes none", strempty(r->query));
                        return false;
                }
        }
        return true;
}

/* 403, naming the group by itself too: vgpuctl words its refusal from it ("... nor in group G"). */
static void reply_forbidden(const struct api_request *req, struct api_reply *reply) {
        char msg[VGPU_ERROR_MESSAGE_MAX + 64];
        struct json_body b;
        snprintf(msg, sizeof(msg),
                 "%s %s: permission denied: %s may only read; changes need root or group '%s'", req->method,
                 req->path, strempty(req->caller), req->d->config->group);
        if (json_begin(&b) < 0) {
                reply_static(reply, 500, "{\"error\":\"out of memory\"}\n");
                return;
        }
        out_open_object(b.o, NULL);
        out_string(b.o, OUT_JSON, "error", NULL, msg);
        out_string(b.o, OUT_JSON, "group", NULL, req->d->config->group);
        out_close_object(b.o);
        if (json_end(&b, reply, 403) < 0 || !reply->body)
                reply_static(reply, 500, "{\"error\":\"out of memory\"}\n");
}

bool api_request_add_query(struct api_request *req, const char *key, const char *value) {
        if (req->n_query == API_QUERY_MAX) {
                req->query_overflow = true;
                return false;
        }
        req->query[req->n_query++] = (struct api_query){ key, value };
        return true;
}

void api_request_set_target(struct api_request *req, char *target) {
        req->path = target;
        char *q = strchr(target, '?');
        if (!q)
                return;
        *q++ = '\0';
        for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
                char *eq = strchr(kv, '=');
                if (eq)
                        *eq++ = '\0';
                if (!api_request_add_query(req, kv, eq))
                        break;
        }
}

void api_dispatch(const struct api_request *req, struct api_reply *reply) {
        *reply = (struct api_reply){};
        const struct route *found = NULL;
        const char *arg = NULL;
        char allow[sizeof(reply->allow)] = "";
        bool path_known = false;

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                const struct route *r = &routes[i];
                const char *a;
                if (!(r->listeners & req->listener) || !route_matches_path(r, req->path, &a))
                        continue;
                path_known = true;
                snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "",
                         r->method);
                if (streq(r->method, req->method)) {
                        found = r;
                        arg = a;
                }
        }
        if (!path_known) {
                reply_error(reply, 404,
                            "%s: no such resource (see /v1/gpus, /v1/types, /v1/instances, /v1/slices, "
                            "/v1/health, /v1/events, /v1/apply, /v1/config%s)",
                            req->path, req->listener & LISTENER_METRICS ? ", /metrics" : "");
                return;
        }
        if (!found) {
                reply_error(reply, 405, "%s %s: method not allowed (allowed: %s)", req->method, req->path,
                            allow);
                memcpy(reply->allow, allow, sizeof(allow));
                return;
        }
        if (req->access < found->access) {
                if (req->access == ACCESS_NONE) {
                        reply_error(reply, 401,
                                    "%s %s: a bearer token is required (Authorization: Bearer TOKEN)",
                                    req->method, req->path);
                        reply->want_auth = true;
                } else
                        reply_forbidden(req, reply);
                event_access_denied(req->d, req->peer ? req->peer : req->caller,
                                    "denied %s %s to %s (%s access)", req->method, req->path,
                                    strempty(req->caller), auth_access_to_string(req->access));
                return;
        }
        if (!query_allowed(found, req, reply))
                return;
        bool json, pretty;
        if (output_query_check(req, &json, &pretty, reply) < 0)
                return;
        found->handler(req, arg, reply);
        if (!reply->body)
                reply_error(reply, 500, "out of memory");
}
