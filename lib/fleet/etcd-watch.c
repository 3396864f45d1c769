/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd-watch.c — a watch on a prefix: over gRPC, POST /etcdserverpb.Watch/Watch with one
 * WatchRequest, the request side then closed (etcd keeps the watch until the stream ends), and
 * a stream of framed WatchResponse messages; through the gateway, POST /v3/watch answers with a
 * chunked stream of JSON messages, one per line ({"result": WatchResponse} or {"error": Status}).
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

/* A WatchResponse with canceled set: why, as the error to stop with. */
static int watch_canceled(struct watch_state *s, int64_t compact_revision, const char *why) {
        s->compact_revision = compact_revision;
        if (s->compact_revision > 0)
                return vgpu_error_set(s->err, -ESTALE,
                                      "etcd watch: the start revision was compacted (compacted up to %" PRId64
                                      ")",
                                      s->compact_revision);
        /* 3.4 cancels a watch whose token is no longer valid (not an error status) */
        if (why && strstr(why, "invalid auth token")) {
                s->grpc_code = 16;
                return vgpu_error_set(s->err, -EACCES, "etcd watch: %s", why);
        }
        return vgpu_error_set(s->err, -ECANCELED, "etcd watch canceled by the server: %s",
                              why && *why ? why : "no reason given");
}

/* n events (taken) to the callback; revision: the last event's, else the header's */
static int watch_deliver(struct watch_state *s, struct vgpu_etcd_event *ev, size_t n,
                         int64_t header_revision) {
        int64_t last = 0;
        for (size_t i = 0; i < n; i++)
                if (ev[i].kv.mod_revision > last)
                        last = ev[i].kv.mod_revision;
        if (last == 0)
                last = header_revision;
        int r = s->fn(ev, n, last, s->userdata);
        events_free(ev, n);
        return r;
}

static int handle_result(struct watch_state *s, json_object *res) {
        if (etcd_json_bool(res, "created"))
                s->created = true;
        if (etcd_json_bool(res, "canceled")) {
                json_object *v;
                const char *why = json_object_object_get_ex(res, "cancel_reason", &v)
                                          ? json_object_get_string(v)
                                          : NULL;
                return watch_canceled(s, etcd_json_int64(res, "compact_revision"), why);
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
        }
        return watch_deliver(s, ev, n, etcd_header_revision(res));
}

/* Event { type = 1 (PUT 0, DELETE 1); kv = 2; prev_kv = 3; } */
static int pb_event(const struct pb_field *f, struct vgpu_etcd_event *ev) {
        struct pb_reader rd = pb_reader_new(f->data, f->len);
        struct pb_field x;
        int r;
        bool have_kv = false;
        while ((r = pb_next(&rd, &x)) > 0) {
                if (x.number == 1 && x.wire == PB_VARINT)
                        ev->deleted = x.varint == 1;
                else if ((x.number == 2 || x.number == 3) && x.wire == PB_LEN) {
                        struct vgpu_etcd_kv *kv = x.number == 2 ? &ev->kv : &ev->prev;
                        etcd_kv_clear(kv);
                        if ((r = etcd_pb_kv(x.data, x.len, kv)) < 0)
                                return r;
                        have_kv |= x.number == 2;
                }
        }
        return r < 0 ? r : have_kv ? 0 : -EBADMSG;
}

/* WatchResponse { header = 1; watch_id = 2; created = 3; canceled = 4; compact_revision = 5;
 * cancel_reason = 6; fragment = 7; repeated Event events = 11; } */
static int handle_message(struct watch_state *s, const uint8_t *p, size_t n) {
        struct pb_reader rd = pb_reader_new(p, n);
        struct pb_field f;
        int64_t revision = 0, compact_revision = 0;
        bool canceled = false;
        _cleanup_free_ char *why = NULL;
        size_t n_events = 0, allocated = 0;
        struct vgpu_etcd_event *ev = NULL;
        int r;
        while ((r = etcd_pb_next_body_field(&rd, &f, &revision)) > 0) {
                if (f.number == 3 && f.wire == PB_VARINT)
                        s->created |= f.varint != 0;
                else if (f.number == 4 && f.wire == PB_VARINT)
                        canceled = f.varint != 0;
                else if (f.number == 5 && f.wire == PB_VARINT)
                        compact_revision = (int64_t) f.varint;
                else if (f.number == 6 && f.wire == PB_LEN && !why) {
                        if (!(why = pb_strndup(&f, NULL)))
                                r = -ENOMEM;
                } else if (f.number == 11 && f.wire == PB_LEN) {
                        if (!GREEDY_REALLOC(ev, allocated, n_events + 1))
                                r = -ENOMEM;
                        else {
                                ev[n_events] = (struct vgpu_etcd_event){};
                                r = pb_event(&f, &ev[n_events++]);
                        }
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                events_free(ev, n_events);
                return vgpu_error_set(s->err, r,
                                      r == -ENOMEM ? "etcd watch: out of memory" : "etcd watch: bad event");
        }
        if (canceled) {
                events_free(ev, n_events);
                return watch_canceled(s, compact_revision, why);
        }
        if (n_events == 0) {
                free(ev);
                return 0;
        }
        return watch_deliver(s, ev, n_events, revision);
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

/* The stream's next bytes appended to s->line (NUL-terminated); false: stop the transfer. */
static bool watch_append(struct watch_state *s, const char *p, size_t n) {
        if (s->result)
                return false;
        if (!GREEDY_REALLOC(s->line, s->allocated, s->len + n + 1)) {
                s->result = vgpu_error_set(s->err, -ENOMEM, "etcd watch: out of memory");
                return false;
        }
        memcpy(s->line + s->len, p, n);
        s->len += n;
        s->line[s->len] = '\0';
        return true;
}

/* The whole NDJSON lines of s->line handled and removed: 0, or what stops the watch. */
static int take_lines(struct watch_state *s) {
        char *nl;
        while ((nl = memchr(s->line, '\n', s->len))) {
                *nl = '\0';
                int r = s->line[0] ? handle_line(s, s->line) : 0;
                size_t used = (size_t) (nl + 1 - s->line);
                memmove(s->line, nl + 1, s->len - used + 1);
                s->len -= used;
                if (r != 0)
                        return r;
        }
        return 0;
}

/* The whole gRPC frames of s->line handled and removed: 0, or what stops the watch. */
static int take_frames(struct watch_state *s) {
        const uint8_t *msg;
        size_t msg_len, used;
        while ((used = etcd_grpc_next_frame((const uint8_t *) s->line, s->len, &msg, &msg_len)) > 0) {
                int r = s->line[0] != 0 ? vgpu_error_set(s->err, -EBADMSG, "etcd watch: a compressed message")
                                        : handle_message(s, msg, msg_len);
                memmove(s->line, s->line + used, s->len - used);
                s->len -= used;
                if (r != 0)
                        return r;
        }
        return 0;
}

static size_t watch_write(char *p, size_t size, size_t nmemb, void *userdata) {
        struct watch_state *s = userdata;
        size_t n = size * nmemb;
        if (!watch_append(s, p, n))
                return 0;
        int r = s->e->grpc ? take_frames(s) : take_lines(s);
        if (r != 0) {
                s->result = r;
                return 0; /* ends the transfer */
        }
        return n;
}

/* One watch on the current endpoint. *ret_connected: whether the server accepted it. */
static int watch_once(struct vgpu_etcd *e, const void *body, size_t body_len, struct watch_state *s,
                      const volatile int *stop, struct vgpu_error *err) {
        const struct curl_dl *dl = e->dl;
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s%s", e->endpoints[e->current],
                     e->grpc ? "/etcdserverpb.Watch/Watch" : "/v3/watch") < 0)
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
        dl->easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) body_len);
        dl->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        dl->easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
        dl->easy_setopt(h, CURLOPT_WRITEDATA, s);
        struct grpc_status st = {};
        if (e->grpc) {
                dl->easy_setopt(h, CURLOPT_HEADERFUNCTION, etcd_grpc_header);
                dl->easy_setopt(h, CURLOPT_HEADERDATA, &st);
        }
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
        /* the stream's status: a member that lost its leader ends it with Unavailable */
        if (st.have_code && st.code != 0) {
                s->grpc_code = st.code;
                return vgpu_error_set(err, etcd_grpc_errno(st.code), "etcd watch: %s",
                                      *st.message ? st.message : "ended with an error status");
        }
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
        _cleanup_free_ void *body = NULL;
        size_t body_len = 0;
        if (e->grpc)
                body = etcd_grpc_watch_request(prefix, start_revision, !(flags & VGPU_ETCD_WATCH_NO_PREV_KV),
                                               &body_len);
        else {
                json_object *o = json_object_new_object(), *create = json_object_new_object();
                if (!o || !create || etcd_json_add_key(create, prefix, true) < 0 ||
                    (start_revision > 0 && json_object_object_add(create, "start_revision",
                                                                  etcd_json_new_int64(start_revision)) < 0) ||
                    (!(flags & VGPU_ETCD_WATCH_NO_PREV_KV) &&
                     json_object_object_add(create, "prev_kv", json_object_new_boolean(true)) < 0) ||
                    json_object_object_add(o, "create_request", create) < 0) {
                        json_object_put(create);
                        json_object_put(o);
                        return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
                }
                body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                body_len = body ? strlen(body) : 0;
                json_object_put(o);
        }
        if (!body)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");

        bool reauthed = false;
        int r = -EIO;
        for (size_t i = 0; i < e->n_endpoints; i++) {
                struct watch_state s = { .e = e, .fn = fn, .userdata = userdata, .err = err };
                r = watch_once(e, body, body_len, &s, stop, err);
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
                        vgpu_etcd_next_endpoint(e);
                        continue;
                }
                /* lost, or canceled by a member that lost its leader (hasleader): resume elsewhere */
                if (r == -ECONNRESET || r == -EAGAIN || r == -ECANCELED)
                        vgpu_etcd_next_endpoint(e);
                return r;
        }
        return r;
}
