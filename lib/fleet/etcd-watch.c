/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd-watch.c — a watch on a prefix through the gateway: POST /v3/watch answers with a chunked
 * stream of JSON messages, one per line ({"result": WatchResponse} or {"error": Status}).
 *
 * One watch per connection (the gateway takes one create_request per stream). The transfer runs
 * in a curl multi handle polled every 200 ms, so another thread can stop it through *stop.
 * Resuming: the caller restarts from the last event's revision + 1; a start that was compacted
 * ends with canceled + compact_revision, returned as -ESTALE so the caller re-lists.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-internal.h"

#define POLL_MS 200

struct watch_state {
        struct vgpu_etcd *e;
        vgpu_etcd_watch_fn fn;
        void *userdata;
        char *line;
        size_t len, allocated;
        bool created;
        int result; /* non-zero: stop with this */
        int64_t compact_revision;
        int grpc_code; /* of an {"error"} line */
        struct vgpu_error *err;
};

static void events_free(struct vgpu_etcd_event *ev, size_t n) {
        for (size_t i = 0; i < n; i++) {
                etcd_kv_clear(&ev[i].kv);
                etcd_kv_clear(&ev[i].prev);
        }
        free(ev);
}

static int handle_result(struct watch_state *s, json_object *res) {
        if (etcd_json_bool(res, "created"))
                s->created = true;
        if (etcd_json_bool(res, "canceled")) {
                s->compact_revision = etcd_json_int64(res, "compact_revision");
                json_object *v;
                const char *why = json_object_object_get_ex(res, "cancel_reason", &v)
                                          ? json_object_get_string(v)
                                          : NULL;
                if (s->compact_revision > 0)
                        return vgpu_error_set(
                                s->err, -ESTALE,
                                "etcd watch: the start revision was compacted (compacted up to %" PRId64 ")",
                                s->compact_revision);
                /* 3.4 cancels a watch whose token is no longer valid (not an {"error"} line) */
                if (why && strstr(why, "invalid auth token")) {
                        s->grpc_code = 16;
                        return vgpu_error_set(s->err, -EACCES, "etcd watch: %s", why);
                }
                return vgpu_error_set(s->err, -ECANCELED, "etcd watch canceled by the server: %s",
                                      why ? why : "no reason given");
        }
        json_object *events;
        if (!json_object_object_get_ex(res, "events", &events) ||
            !json_object_is_type(events, json_type_array))
                return 0;
        size_t n = json_object_array_length(events);
        if (n == 0)
                return 0;
        struct vgpu_etcd_event *ev = calloc(n, sizeof(*ev));
        if (!ev)
                return vgpu_error_set(s->err, -ENOMEM, "etcd watch: out of memory");
        int64_t last = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(events, i), *v, *kv, *prev;
                /* PUT is 0: proto3 omits the type of a put */
                ev[i].deleted = json_object_object_get_ex(o, "type", &v) &&
                                streq(json_object_get_string(v), "DELETE");
                int r = json_object_object_get_ex(o, "kv", &kv) ? etcd_kv_parse(kv, &ev[i].kv) : -EBADMSG;
                if (r >= 0 && json_object_object_get_ex(o, "prev_kv", &prev))
                        r = etcd_kv_parse(prev, &ev[i].prev);
                if (r < 0) {
                        events_free(ev, n);
                        return vgpu_error_set(s->err, -EBADMSG, "etcd watch: bad event");
                }
                if (ev[i].kv.mod_revision > last)
                        last = ev[i].kv.mod_revision;
        }
        if (last == 0)
                last = etcd_header_revision(res);
        int r = s->fn(ev, n, last, s->userdata);
        events_free(ev, n);
        return r;
}

static int handle_line(struct watch_state *s, const char *line) {
        json_object *o = json_tokener_parse(line), *v;
        if (!o)
                return vgpu_error_set(s->err, -EBADMSG, "etcd watch: not JSON: %.200s", line);
        int r = 0;
        if (json_object_object_get_ex(o, "result", &v))
                r = handle_result(s, v);
        else if (json_object_object_get_ex(o, "error", &v)) {
                s->grpc_code = (int) etcd_json_int64(v, "grpc_code");
                json_object *m;
                const char *msg =
                        json_object_object_get_ex(v, "message", &m) ? json_object_get_string(m) : "?";
                r = vgpu_error_set(s->err, s->grpc_code ? etcd_grpc_errno(s->grpc_code) : -EIO,
                                   "etcd watch: %s", msg);
        }
        json_object_put(o);
        return r;
}

static size_t watch_write(char *p, size_t size, size_t nmemb, void *userdata) {
        struct watch_state *s = userdata;
        size_t n = size * nmemb;
        if (s->result)
                return 0;
        if (!GREEDY_REALLOC(s->line, s->allocated, s->len + n + 1)) {
                s->result = vgpu_error_set(s->err, -ENOMEM, "etcd watch: out of memory");
                return 0;
        }
        memcpy(s->line + s->len, p, n);
        s->len += n;
        s->line[s->len] = '\0';
        char *nl;
        while ((nl = memchr(s->line, '\n', s->len))) {
                *nl = '\0';
                int r = s->line[0] ? handle_line(s, s->line) : 0;
                size_t used = (size_t) (nl + 1 - s->line);
                memmove(s->line, nl + 1, s->len - used + 1);
                s->len -= used;
                if (r != 0) {
                        s->result = r;
                        return 0; /* ends the transfer */
                }
        }
        return n;
}

/* One watch on the current endpoint. *ret_connected: whether the server accepted it. */
static int watch_once(struct vgpu_etcd *e, const char *body, struct watch_state *s, const volatile int *stop,
                      struct vgpu_error *err) {
        const struct curl_dl *dl = e->dl;
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s/v3/watch", e->endpoints[e->current]) < 0)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        CURL *h = dl->easy_init();
        CURLM *m = h ? dl->multi_init() : NULL;
        struct curl_slist *headers = m ? etcd_headers(e) : NULL;
        if (!headers) {
                if (m)
                        dl->multi_cleanup(m);
                if (h)
                        dl->easy_cleanup(h);
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        }
        char curl_err[CURL_ERROR_SIZE] = "";
        etcd_setup_handle(e, h, url, 0); /* no end: the stream lasts as long as the watch */
        dl->easy_setopt(h, CURLOPT_POST, 1L);
        dl->easy_setopt(h, CURLOPT_POSTFIELDS, body);
        dl->easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        dl->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        dl->easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
        dl->easy_setopt(h, CURLOPT_WRITEDATA, s);
        dl->easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        dl->multi_add_handle(m, h);

        int r = 0;
        CURLcode cc = CURLE_OK;
        bool done = false;
        while (!done) {
                if (stop && *stop)
                        break;
                int running = 0;
                if (dl->multi_perform(m, &running) != CURLM_OK) {
                        r = vgpu_error_set(err, -EIO, "etcd watch: curl_multi_perform failed");
                        break;
                }
                CURLMsg *msg;
                int left;
                while ((msg = dl->multi_info_read(m, &left)))
                        if (msg->msg == CURLMSG_DONE) {
                                cc = msg->data.result;
                                done = true;
                        }
                if (done || s->result)
                        break;
                dl->multi_poll(m, NULL, 0, POLL_MS, NULL);
        }
        long status = 0;
        dl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        dl->multi_remove_handle(m, h);
        dl->easy_cleanup(h);
        dl->multi_cleanup(m);
        dl->slist_free_all(headers);

        if (stop && *stop && !s->result)
                return 0;
        if (r < 0)
                return r;
        if (s->result)
                return s->result;
        if (status != 0 && status != 200)
                return vgpu_error_set(err, -EPROTO, "etcd %s: watch answered HTTP %ld",
                                      e->endpoints[e->current], status);
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
                return vgpu_error_set(err, -ECONNREFUSED, "etcd %s: %s", e->endpoints[e->current],
                                      *curl_err ? curl_err : dl->easy_strerror(cc));
        if (cc == CURLE_OPERATION_TIMEDOUT)
                return vgpu_error_set(err, -ETIMEDOUT, "etcd %s: %s", e->endpoints[e->current],
                                      *curl_err ? curl_err : dl->easy_strerror(cc));
        /* the stream ended (member stopped, lost its leader): the caller resumes elsewhere */
        return vgpu_error_set(err, -ECONNRESET, "etcd %s: watch stream ended: %s", e->endpoints[e->current],
                              cc == CURLE_OK ? "closed by the server"
                                             : (*curl_err ? curl_err : dl->easy_strerror(cc)));
}

_public_ int vgpu_etcd_watch(struct vgpu_etcd *e, const char *prefix, int64_t start_revision,
                             vgpu_etcd_watch_fn fn, void *userdata, const volatile int *stop,
                             int64_t *ret_compact_revision, struct vgpu_error *err) {
        return vgpu_etcd_watch_flags(e, prefix, start_revision, 0, fn, userdata, stop, ret_compact_revision,
                                     err);
}

_public_ int vgpu_etcd_watch_flags(struct vgpu_etcd *e, const char *prefix, int64_t start_revision,
                                   unsigned flags, vgpu_etcd_watch_fn fn, void *userdata,
                                   const volatile int *stop, int64_t *ret_compact_revision,
                                   struct vgpu_error *err) {
        if (!e || !prefix || !fn)
                return vgpu_error_set(err, -EINVAL, "etcd watch: no prefix or callback");
        if (e->user && !e->token) {
                int r = etcd_authenticate(e, err);
                if (r < 0)
                        return r;
        }
        json_object *body = json_object_new_object(), *create = json_object_new_object();
        if (!body || !create || etcd_json_add_key(create, prefix, true) < 0 ||
            (start_revision > 0 &&
             json_object_object_add(create, "start_revision", etcd_json_new_int64(start_revision)) < 0) ||
            (!(flags & VGPU_ETCD_WATCH_NO_PREV_KV) &&
             json_object_object_add(create, "prev_kv", json_object_new_boolean(true)) < 0) ||
            json_object_object_add(body, "create_request", create) < 0) {
                json_object_put(create);
                json_object_put(body);
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        }
        _cleanup_free_ char *text = strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
        json_object_put(body);
        if (!text)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");

        bool reauthed = false;
        int r = -EIO;
        for (size_t i = 0; i < e->n_endpoints; i++) {
                struct watch_state s = { .e = e, .fn = fn, .userdata = userdata, .err = err };
                r = watch_once(e, text, &s, stop, err);
                free(s.line);
                if (r == -ESTALE && ret_compact_revision)
                        *ret_compact_revision = s.compact_revision;
                if (s.grpc_code == 16 && e->user && !reauthed) {
                        reauthed = true;
                        free(e->token);
                        e->token = NULL;
                        int k = etcd_authenticate(e, err);
                        if (k < 0)
                                return k;
                        i--;
                        continue;
                }
                /* refused before the watch began: the next member; once it ran, the caller resumes */
                if ((r == -ECONNREFUSED || r == -ETIMEDOUT || (r == -ECONNRESET && !s.created) ||
                     (r == -EAGAIN && !s.created))) {
                        e->current = (e->current + 1) % e->n_endpoints;
                        continue;
                }
                /* lost, or canceled by a member that lost its leader (hasleader): resume elsewhere */
                if (r == -ECONNRESET || r == -EAGAIN || r == -ECANCELED)
                        e->current = (e->current + 1) % e->n_endpoints;
                return r;
        }
        return r;
}
