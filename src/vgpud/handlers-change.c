/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * handlers-change.c — the mutating endpoints, each one call into the library that vgpuctl
 * makes too (which takes the host lock, and undoes a half-done step before it returns):
 *
 *   POST   /v1/instances        {"parent", "type", "uuid"?, "persist"?, "auto_start"?, "attrs"?}
 *                               -> `vgpuctl create --json`: {"uuid","parent","type","changed"}
 *                                  201 when created, 200 when it existed already
 *   DELETE /v1/instances/ID     ID: a UUID, or a vendor-VFIO VF's BDF -> `vgpuctl remove --json`
 *   POST   /v1/apply            body: host.yaml; ?dry_run, ?force, ?diff, ?source=NAME (the file's
 *                               name in messages) -> `vgpuctl apply --json`
 *
 * Each answers in the form ?format=json|text and ?pretty ask for (api.h: output_begin), which
 * is how vgpuctl forwards these verbs (src/vgpuctl/daemon-client.c) and prints what it gets.
 * Errors are the library's messages, as vgpuctl prints them when it runs directly.
 */
#include <errno.h>
#include <stdarg.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "api.h"
#include "log.h"
#include "print.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"
#include "vgpu/lifecycle.h"

/* A 400 reply; returns -EINVAL so parsers can `return bad_request(...)`. */
_printf_(2, 3) static int bad_request(struct api_reply *reply, const char *fmt, ...) {
        char msg[VGPU_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        reply_error(reply, 400, "%s", msg);
        return -EINVAL;
}

static int out_of_memory(struct api_reply *reply) {
        reply_error(reply, 500, "out of memory");
        return -ENOMEM;
}

/* The JSON body's member key as a string: 1 set, 0 absent, -EINVAL with a 400 reply. */
static int member_string(json_object *obj, const char *key, const char **ret, struct api_reply *reply) {
        json_object *v;
        if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return bad_request(reply, "body: \"%s\" must be a non-empty string", key);
        *ret = json_object_get_string(v);
        return 1;
}

static int member_bool(json_object *obj, const char *key, bool *ret, struct api_reply *reply) {
        json_object *v;
        if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return bad_request(reply, "body: \"%s\" must be true or false", key);
        *ret = json_object_get_boolean(v);
        return 1;
}

/* "attrs": [{"KEY": "VALUE"}, ...] as in mdevctl's files (order kept: they are written in order) */
static int member_attrs(json_object *obj, struct vgpu_mdev_spec *spec, struct api_reply *reply) {
        json_object *arr;
        if (!json_object_object_get_ex(obj, "attrs", &arr) || json_object_is_type(arr, json_type_null))
                return 0;
        if (!json_object_is_type(arr, json_type_array))
                return bad_request(reply, "body: \"attrs\" must be an array of {\"KEY\": \"VALUE\"} objects");
        size_t n = json_object_array_length(arr);
        if (n > 64)
                return bad_request(reply, "body: \"attrs\": at most 64 attributes");
        if (n && !(spec->attrs = calloc(n, sizeof(*spec->attrs))))
                return out_of_memory(reply);
        for (size_t i = 0; i < n; i++) {
                json_object *a = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(a, json_type_object) || json_object_object_length(a) != 1)
                        return bad_request(reply, "body: \"attrs\"[%zu] must be one {\"KEY\": \"VALUE\"}", i);
                json_object_object_foreach (a, key, val) {
                        if (!key[0] || !json_object_is_type(val, json_type_string))
                                return bad_request(reply,
                                                   "body: \"attrs\"[%zu]: the key must be non-empty and the "
                                                   "value a string",
                                                   i);
                        struct vgpu_mdev_attr *at = &spec->attrs[spec->n_attrs++];
                        if (!(at->key = strdup(key)) || !(at->value = strdup(json_object_get_string(val))))
                                return out_of_memory(reply);
                }
        }
        return 0;
}

/* Every member of the body is one we know: a typo must not be silently ignored. */
static int check_members(json_object *obj, struct api_reply *reply) {
        static const char *const known[] = { "parent", "type", "uuid", "persist", "auto_start", "attrs" };
        json_object_object_foreach (obj, key, val) {
                bool ok = false;
                (void) val;
                for (size_t i = 0; i < ELEMENTSOF(known) && !ok; i++)
                        ok = streq(key, known[i]);
                if (!ok)
                        return bad_request(reply,
                                           "body: unknown member \"%s\" (known: parent, type, uuid, persist, "
                                           "auto_start, attrs)",
                                           key);
        }
        return 0;
}

static int spec_from_json(json_object *obj, struct vgpu_mdev_spec *spec, bool *ret_persist,
                          struct api_reply *reply) {
        const char *parent = NULL, *type = NULL, *uuid = NULL;
        int r;
        if (!json_object_is_type(obj, json_type_object))
                return bad_request(reply, "body: expected a JSON object {\"parent\": ..., \"type\": ...}");
        if ((r = check_members(obj, reply)) < 0 || (r = member_string(obj, "parent", &parent, reply)) < 0 ||
            (r = member_string(obj, "type", &type, reply)) < 0 ||
            (r = member_string(obj, "uuid", &uuid, reply)) < 0 ||
            (r = member_bool(obj, "persist", ret_persist, reply)) < 0 ||
            (r = member_bool(obj, "auto_start", &spec->auto_start, reply)) < 0)
                return r;
        if (!parent || !type)
                return bad_request(reply, "body: \"parent\" and \"type\" are required (see GET /v1/types)");
        /* a bad "uuid" is refused by vgpu_mdev_create (400), in the words vgpuctl uses */
        if (uuid && strlen(uuid) >= sizeof(spec->uuid))
                return bad_request(
                        reply, "body: \"uuid\": '%s' is not a UUID (expected 8-4-4-4-12 hex digits)", uuid);
        if (spec->auto_start && !*ret_persist)
                return bad_request(reply, "body: \"auto_start\" only means something with \"persist\": true");
        if ((r = member_attrs(obj, spec, reply)) < 0)
                return r;
        snprintf(spec->uuid, sizeof(spec->uuid), "%s", strempty(uuid));
        if (!(spec->parent = strdup(parent)) || !(spec->type = strdup(type)))
                return out_of_memory(reply);
        return 0;
}

/* Where a string of the JSON text escapes a NUL (\u0000), or -1. json-c keeps the NUL in the
 * string, but every use of it here is a C string: "0000:3b:00.0\u0000/../x" would become
 * "0000:3b:00.0" unnoticed, and a key would lose its tail. Refused like a raw NUL byte. */
static ssize_t escaped_nul_at(const char *text) {
        bool in_string = false;
        for (const char *s = text; *s; s++) {
                if (*s == '"')
                        in_string = !in_string;
                else if (in_string && *s == '\\') {
                        if (s[1] == 'u' && strncmp(s + 2, "0000", 4) == 0)
                                return s - text;
                        if (s[1])
                                s++; /* the escaped character: \" does not end the string */
                }
        }
        return -1;
}

/* The body of POST /v1/instances into spec; -errno with the 400 reply filled. */
static int parse_create(const struct api_request *req, struct vgpu_mdev_spec *spec, bool *ret_persist,
                        struct api_reply *reply) {
        enum json_tokener_error jerr;
        if (req->body_size == 0)
                return bad_request(reply, "body: expected a JSON object {\"parent\": ..., \"type\": ...}");
        if (strlen(req->body) != req->body_size)
                return bad_request(reply, "body: contains a NUL byte");
        ssize_t nul = escaped_nul_at(req->body);
        if (nul >= 0)
                return bad_request(reply, "body: a string contains a NUL character (\\u0000) at byte %zd",
                                   nul);
        /* strict, and all of it: trailing garbage is an error, not ignored */
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return out_of_memory(reply);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *obj = json_tokener_parse_ex(tok, req->body, (int) req->body_size);
        jerr = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (obj && jerr == json_tokener_success)
                for (const char *s = req->body + end; *s; s++)
                        if (!strchr(" \t\r\n", *s)) {
                                json_object_put(obj);
                                return bad_request(
                                        reply, "body: trailing data after the JSON object at byte %zu", end);
                        }
        if (!obj || jerr != json_tokener_success) {
                json_object_put(obj);
                return bad_request(reply, "body: not valid JSON: %s",
                                   jerr == json_tokener_continue ? "unexpected end of the body"
                                                                 : json_tokener_error_desc(jerr));
        }
        *ret_persist = false;
        int r = spec_from_json(obj, spec, ret_persist, reply);
        json_object_put(obj);
        return r;
}

int handle_create(const struct api_request *req, const char *arg, struct api_reply *reply) {
        struct vgpu_mdev_spec spec = {};
        bool persist = false;
        struct vgpu_error err = {};
        struct json_body b;
        (void) arg;
        if (parse_create(req, &spec, &persist, reply) < 0) {
                vgpu_mdev_spec_free(&spec);
                return 0;
        }
        int r = vgpu_mdev_create(&spec, persist ? VGPU_CREATE_PERSIST : 0, &err);
        if (r < 0) {
                log_full(LOG_WARNING,
                         &(struct log_fields){ .bdf = spec.parent, .uuid = spec.uuid[0] ? spec.uuid : NULL },
                         "create %s on %s for %s failed: %s", spec.type, spec.parent, strempty(req->caller),
                         err.message);
                vgpu_mdev_spec_free(&spec);
                return reply_lib_error(reply, &err);
        }
        if (r > 0) {
                event_add(req->d, EV_INSTANCE_CREATED, LOG_NOTICE, spec.parent, spec.uuid, VGPU_TEMP_UNKNOWN,
                          "created %s (%s on %s%s) for %s", spec.uuid[0] ? spec.uuid : "vendor-VFIO vGPU",
                          spec.type, spec.parent, persist ? ", persistent" : "", strempty(req->caller));
                collect_soon(req->d, 0);
        }
        if (output_begin(&b, req, reply) < 0)
                r = 0;
        else {
                print_outcome(b.o, "created", "already exists", r, spec.uuid, spec.parent, spec.type);
                r = json_end(&b, reply, r > 0 ? 201 : 200);
        }
        vgpu_mdev_spec_free(&spec);
        return r;
}

int handle_remove(const struct api_request *req, const char *id, struct api_reply *reply) {
        char bdf[VGPU_BDF_MAX];
        struct vgpu_error err = {};
        struct json_body b;
        bool is_uuid = vgpu_uuid_valid(id);
        /* the words of vgpu_mdev_remove, which would refuse it alike: vgpuctl prints the same either way */
        if (!is_uuid && vgpu_bdf_normalize(id, bdf) < 0)
                return reply_error(reply, 400, "'%s' is neither a UUID nor a PCI address", id);
        const char *target = is_uuid ? id : bdf;
        int r = vgpu_mdev_remove(target, &err);
        if (r < 0)
                return reply_lib_error(reply, &err);
        if (r > 0) {
                event_add(req->d, EV_INSTANCE_REMOVED, LOG_NOTICE, is_uuid ? NULL : bdf, is_uuid ? id : NULL,
                          VGPU_TEMP_UNKNOWN, "removed %s for %s", target, strempty(req->caller));
                collect_soon(req->d, 0);
        }
        if (output_begin(&b, req, reply) < 0)
                return 0;
        print_outcome(b.o, "removed", "was not there", r, id, NULL, NULL);
        return json_end(&b, reply, 200);
}

int handle_apply(const struct api_request *req, const char *arg, struct api_reply *reply) {
        bool dry_run = false, force = false, diff = false;
        struct vgpu_error err = {};
        struct vgpu_config *cfg = NULL;
        struct vgpu_plan *plan = NULL;
        struct json_body b;
        (void) arg;
        if (query_bool(req, "dry_run", &dry_run, reply) < 0 || query_bool(req, "force", &force, reply) < 0 ||
            query_bool(req, "diff", &diff, reply) < 0)
                return 0;
        /* the name vgpuctl read the body from, so messages name the file as a direct run does */
        const char *source = query_string(req, "source");
        if (!source || !source[0])
                source = "POST /v1/apply";
        if (req->body_size == 0)
                return reply_error(
                        reply, 400,
                        "POST /v1/apply: the body must be a host.yaml (see /etc/vgpuctl/host.yaml)");
        if (strlen(req->body) != req->body_size)
                return reply_error(reply, 400, "POST /v1/apply: the body contains a NUL byte");
        /* errors read "POST /v1/apply:LINE:COLUMN: ..." (or "SOURCE:LINE:COLUMN: ...") */
        if (vgpu_config_parse_text(req->body, req->body_size, source, &cfg, &err) < 0)
                return reply_lib_error(reply, &err);
        unsigned flags = (dry_run ? VGPU_APPLY_DRY_RUN : 0) | (force ? VGPU_APPLY_FORCE : 0);
        int r = vgpu_apply(cfg, req->body, flags, &plan, &err);
        vgpu_config_free(cfg);
        if (r < 0) {
                if (!dry_run)
                        event_add(req->d, EV_APPLY_FAILED, LOG_ERR, NULL, NULL, VGPU_TEMP_UNKNOWN,
                                  "apply for %s failed (host left as it was): %s", strempty(req->caller),
                                  err.message);
                return reply_lib_error(reply, &err);
        }
        if (!dry_run) {
                event_add(req->d, EV_APPLY, r > 0 ? LOG_NOTICE : LOG_INFO, NULL, NULL, VGPU_TEMP_UNKNOWN,
                          "apply for %s: %d change%s", strempty(req->caller), r, r == 1 ? "" : "s");
                if (r > 0)
                        collect_soon(req->d, 0);
        }
        if (output_begin(&b, req, reply) < 0)
                r = 0;
        else {
                print_apply(b.o, plan, diff, dry_run, source);
                r = json_end(&b, reply, 200);
        }
        vgpu_plan_free(plan);
        return r;
}
