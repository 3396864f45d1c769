/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * handlers-config.c — the host's configuration as one resource, for declarative tools (a generic
 * REST provider, the Ansible collection): what you PUT is what you then GET.
 *
 *   GET /v1/config   -> {"host_yaml": "<host.yaml>"}: the current carve-up as `vgpuctl export`
 *                       prints it
 *   PUT /v1/config   body {"host_yaml": "<host.yaml>"}; ?force -> applied as POST /v1/apply
 *                       applies a host.yaml, then answered with exactly what GET returns now
 *
 * A bad body or host.yaml is a 400 naming the line ("PUT /v1/config:LINE:COLUMN: ..."); a
 * failed apply rolls back (the library's rule) and nothing is changed.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"

#define PUT_SOURCE "PUT /v1/config"

/* The host's carve-up as host.yaml text, as `vgpuctl export` makes it (src/vgpuctl/apply.c). */
static int export_text(char **ret, struct vgpu_error *err) {
        struct vgpu_host *host = NULL;
        struct vgpu_mdev_spec *defs = NULL;
        struct vgpu_slice_status *slices = NULL;
        size_t n_defs = 0, n_slices = 0;
        int r = vgpu_host_scan(VGPU_SCAN_INSTANCES | VGPU_SCAN_DETAILS, &host, err);
        if (r >= 0)
                r = vgpu_mdev_definitions(&defs, &n_defs, NULL, err);
        if (r >= 0)
                r = vgpu_slice_list(&slices, &n_slices, err);
        if (r >= 0)
                r = vgpu_config_export_slices(host, defs, n_defs, slices, n_slices, ret, err);
        free(slices);
        vgpu_mdev_specs_free(defs, n_defs);
        vgpu_host_free(host);
        return r;
}

static int reply_config(struct api_reply *reply) {
        struct vgpu_error err = {};
        struct json_body b;
        char *text = NULL;
        if (export_text(&text, &err) < 0)
                return reply_host_error(reply, &err);
        if (json_begin(&b) < 0) {
                free(text);
                return reply_error(reply, 500, "out of memory");
        }
        out_open_object(b.o, NULL);
        out_string(b.o, OUT_JSON, "host_yaml", NULL, text);
        out_close_object(b.o);
        free(text);
        return json_end(&b, reply, 200);
}

int handle_config_get(const struct api_request *req, const char *arg, struct api_reply *reply) {
        (void) req, (void) arg;
        return reply_config(reply);
}

/* The body {"host_yaml": "..."} (exactly that member, a string without NUL); its text or NULL
 * with the 400 reply made. The json_object holding the text is *ret_obj. */
static const char *put_body(const struct api_request *req, json_object **ret_obj, struct api_reply *reply) {
        *ret_obj = NULL;
        if (req->body_size == 0 || strlen(req->body) != req->body_size) {
                reply_error(reply, 400,
                            PUT_SOURCE ": the body must be a JSON object {\"host_yaml\": \"<host.yaml>\"}");
                return NULL;
        }
        struct json_tokener *tok = json_tokener_new();
        if (!tok) {
                reply_error(reply, 500, "out of memory");
                return NULL;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *o = json_tokener_parse_ex(tok, req->body, (int) req->body_size);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        bool trailing = false;
        for (const char *s = req->body + end; o && jerr == json_tokener_success && *s; s++)
                trailing = trailing || !strchr(" \t\r\n", *s);
        if (!o || jerr != json_tokener_success || trailing) {
                json_object_put(o);
                reply_error(reply, 400, PUT_SOURCE ": body: not valid JSON: %s",
                            trailing                        ? "trailing data after the object"
                            : jerr == json_tokener_continue ? "unexpected end of the body"
                                                            : json_tokener_error_desc(jerr));
                return NULL;
        }
        json_object *v = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "host_yaml", &v) ||
            !json_object_is_type(v, json_type_string) || json_object_object_length(o) != 1) {
                json_object_put(o);
                reply_error(reply, 400,
                            PUT_SOURCE ": body: expected exactly {\"host_yaml\": \"<host.yaml>\"}");
                return NULL;
        }
        const char *text = json_object_get_string(v);
        if (strlen(text) != (size_t) json_object_get_string_len(v)) {
                json_object_put(o);
                reply_error(reply, 400, PUT_SOURCE ": host_yaml: contains a NUL character");
                return NULL;
        }
        *ret_obj = o;
        return text;
}

int handle_config_put(const struct api_request *req, const char *arg, struct api_reply *reply) {
        struct vgpu_error err = {};
        struct vgpu_config *cfg = NULL;
        struct vgpu_plan *plan = NULL;
        json_object *o;
        bool force = false;
        (void) arg;
        if (query_bool(req, "force", &force, reply) < 0)
                return 0;
        const char *text = put_body(req, &o, reply);
        if (!text)
                return 0;
        /* errors read "PUT /v1/config:LINE:COLUMN: ..." */
        if (vgpu_config_parse_text(text, strlen(text), PUT_SOURCE, &cfg, &err) < 0) {
                json_object_put(o);
                return reply_lib_error(reply, &err);
        }
        int r = vgpu_apply(cfg, text, force ? VGPU_APPLY_FORCE : 0, &plan, &err);
        vgpu_config_free(cfg);
        vgpu_plan_free(plan);
        json_object_put(o);
        if (r < 0) {
                event_add(req->d, EV_APPLY_FAILED, LOG_ERR, NULL, NULL, VGPU_TEMP_UNKNOWN,
                          "%s for %s failed (host left as it was): %s", PUT_SOURCE, strempty(req->caller),
                          err.message);
                return reply_lib_error(reply, &err);
        }
        event_add(req->d, EV_APPLY, r > 0 ? LOG_NOTICE : LOG_INFO, NULL, NULL, VGPU_TEMP_UNKNOWN,
                  "%s for %s: %d change%s", PUT_SOURCE, strempty(req->caller), r, r == 1 ? "" : "s");
        if (r > 0)
                collect_soon(req->d, 0);
        return reply_config(reply);
}
