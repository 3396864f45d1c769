/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd.c — the etcd v3 client: one request (to a gRPC method, etcd-grpc.c, or to the JSON
 * gateway) with endpoint rotation and auth, and the key-value calls (range, put, delete,
 * compaction) on top of it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd-internal.h"

#define DEFAULT_TIMEOUT_MS 2000
#define MAX_ANSWER_BYTES   (256u << 20)

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

_public_ void vgpu_etcd_free(struct vgpu_etcd *e) {
        if (!e)
                return;
        if (e->curl)
                e->dl->easy_cleanup(e->curl);
        strv_free(e->endpoints, e->n_endpoints);
        free(e->ca_file);
        free(e->cert_file);
        free(e->key_file);
        free(e->user);
        if (e->password)
                explicit_bzero(e->password, strlen(e->password));
        free(e->password);
        if (e->token)
                explicit_bzero(e->token, strlen(e->token));
        free(e->token);
        free(e);
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s || !*s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

_public_ int vgpu_etcd_new(const struct vgpu_etcd_config *c, struct vgpu_etcd **ret, struct vgpu_error *err) {
        if (!c || !c->endpoints || !c->endpoints[0] || !ret)
                return vgpu_error_set(err, -EINVAL, "etcd client: no endpoints");
        char why[256];
        const struct curl_dl *dl = curl_load(why, sizeof(why));
        if (!dl)
                return vgpu_error_set(err, -ENOPKG, "etcd client: %s", why);
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = calloc(1, sizeof(*e));
        if (!e)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        e->dl = dl;
        size_t n = 0;
        while (c->endpoints[n])
                n++;
        e->endpoints = calloc(n, sizeof(char *));
        if (!e->endpoints)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        for (size_t i = 0; i < n; i++) {
                const char *ep = c->endpoints[i];
                if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
                        return vgpu_error_set(
                                err, -EINVAL,
                                "etcd endpoint '%s': expected http://HOST:PORT or https://HOST:PORT", ep);
                size_t len = strlen(ep);
                while (len > 0 && ep[len - 1] == '/')
                        len--;
                if (!(e->endpoints[i] = strndup(ep, len)))
                        return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
                e->n_endpoints++;
        }
        if (dup_opt(c->ca_file, &e->ca_file) < 0 || dup_opt(c->cert_file, &e->cert_file) < 0 ||
            dup_opt(c->key_file, &e->key_file) < 0 || dup_opt(c->user, &e->user) < 0 ||
            dup_opt(c->password, &e->password) < 0)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        if (!!e->cert_file != !!e->key_file)
                return vgpu_error_set(err, -EINVAL,
                                      "etcd client: a client certificate needs its key and back");
        e->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
        /* etcd's gRPC API where libcurl speaks HTTP/2 (etcd-grpc.c says why), unless the JSON
         * gateway is asked for */
        const char *transport = getenv("VGPU_ETCD_TRANSPORT");
        if (transport && *transport && !streq(transport, "grpc") && !streq(transport, "json"))
                return vgpu_error_set(err, -EINVAL,
                                      "etcd client: VGPU_ETCD_TRANSPORT='%s': expected grpc or json",
                                      transport);
        const curl_version_info_data *v = dl->version_info(CURLVERSION_NOW);
        bool http2 = v && (v->features & CURL_VERSION_HTTP2);
        if (transport && streq(transport, "grpc") && !http2)
                return vgpu_error_set(err, -ENOTSUP,
                                      "etcd client: VGPU_ETCD_TRANSPORT=grpc, but libcurl has no HTTP/2");
        e->grpc = http2 && !(transport && streq(transport, "json"));
        if (!(e->curl = dl->easy_init()))
                return vgpu_error_set(err, -ENOMEM, "etcd client: curl_easy_init failed");
        *ret = TAKE_PTR(e);
        return 0;
}

_public_ const char *vgpu_etcd_endpoint(const struct vgpu_etcd *e) {
        return e ? e->endpoints[e->current] : NULL;
}

_public_ void vgpu_etcd_next_endpoint(struct vgpu_etcd *e) {
        if (e) {
                e->current = (e->current + 1) % e->n_endpoints;
                e->h2_live = false;
        }
}

void etcd_setup_handle(struct vgpu_etcd *e, CURL *h, const char *url, long timeout_ms) {
        const struct curl_dl *dl = e->dl;
        dl->easy_setopt(h, CURLOPT_URL, url);
        dl->easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
        dl->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        /* a dead member must cost at most the connect timeout, not the whole request's */
        long connect_ms = e->timeout_ms < 1000 ? e->timeout_ms : 1000;
        dl->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        dl->easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        dl->easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
        dl->easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        dl->easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
        dl->easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
        /*
         * gRPC is HTTP/2 only: with TLS by ALPN; without, from the first byte of a connection
         * (etcd serves both on one port). libcurl 7.88 (Debian 12) fails every request after
         * the first on a reused prior-knowledge connection ("Error in the HTTP2 framing layer",
         * curl#10634, fixed in 8.0), so only a fresh connection is opened that way and the
         * requests that follow on it just ask for HTTP/2. Should curl open a new connection for
         * one of those, it speaks HTTP/1.1 there, which etcd answers without gRPC: post_once()
         * then sends the request again on a fresh connection (nothing was applied).
         */
        if (e->grpc && strncmp(url, "https:", 6) == 0)
                dl->easy_setopt(h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
        else if (e->grpc) {
                bool reuse = h == e->curl && e->h2_live;
                dl->easy_setopt(h, CURLOPT_HTTP_VERSION,
                                reuse ? (long) CURL_HTTP_VERSION_2_0
                                      : (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
                dl->easy_setopt(h, CURLOPT_FRESH_CONNECT, reuse ? 0L : 1L);
        }
        if (e->ca_file)
                dl->easy_setopt(h, CURLOPT_CAINFO, e->ca_file);
        if (e->cert_file) {
                dl->easy_setopt(h, CURLOPT_SSLCERT, e->cert_file);
                dl->easy_setopt(h, CURLOPT_SSLKEY, e->key_file);
        }
}

struct curl_slist *etcd_headers(struct vgpu_etcd *e) {
        const struct curl_dl *dl = e->dl;
        struct curl_slist *h = dl->slist_append(NULL, e->grpc ? "Content-Type: application/grpc"
                                                              : "Content-Type: application/json");
        /* curl waits up to a second for "100 Continue" before large bodies: etcd never sends it */
        if (h)
                h = dl->slist_append(h, "Expect:");
        /* gRPC needs it to send its status as trailers */
        if (h && e->grpc)
                h = dl->slist_append(h, "TE: trailers");
        /* gRPC metadata hasleader=true (a header of its own, or through the gateway's
         * Grpc-Metadata- prefix): a member cut off from its cluster refuses (or ends a watch)
         * instead of serving stale data forever */
        if (h)
                h = dl->slist_append(h, e->grpc ? "hasleader: true" : "Grpc-Metadata-hasleader: true");
        if (h && e->token) {
                _cleanup_free_ char *auth = NULL;
                /* etcd's gRPC metadata key for the token is "token"; the gateway maps Authorization */
                if (asprintf(&auth, e->grpc ? "token: %s" : "Authorization: %s", e->token) < 0) {
                        dl->slist_free_all(h);
                        return NULL;
                }
                h = dl->slist_append(h, auth);
        }
        return h;
}

int etcd_grpc_errno(int code) {
        switch (code) {
        case 3: /* InvalidArgument */
                return -EINVAL;
        case 4: /* DeadlineExceeded */
                return -ETIMEDOUT;
        case 5: /* NotFound: lease not found */
                return -ENOENT;
        case 6: /* AlreadyExists */
                return -EEXIST;
        case 7:  /* PermissionDenied */
        case 16: /* Unauthenticated */
                return -EACCES;
        case 8: /* ResourceExhausted: too many requests */
                return -EBUSY;
        case 9: /* FailedPrecondition: auth not enabled, ... */
                return -EPERM;
        case 11: /* OutOfRange: required revision has been compacted / is a future revision */
                return -ESTALE;
        case 14: /* Unavailable: no leader, leader changed, request timed out */
                return -EAGAIN;
        default:
                return -EIO;
        }
}

struct buf {
        char *data;
        size_t len, allocated;
};

static size_t buf_write(char *p, size_t size, size_t nmemb, void *userdata) {
        struct buf *b = userdata;
        size_t n = size * nmemb;
        if (b->len + n + 1 > MAX_ANSWER_BYTES || !GREEDY_REALLOC(b->data, b->allocated, b->len + n + 1))
                return 0; /* curl fails the transfer */
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return n;
}

enum attempt {
        ATTEMPT_DONE,        /* answered (ok or an error answer that is final) */
        ATTEMPT_NOT_SENT,    /* nothing reached the server: safe to try elsewhere */
        ATTEMPT_UNKNOWN,     /* sent, not answered: only idempotent requests go elsewhere */
        ATTEMPT_REAUTH,      /* the token is no longer valid */
        ATTEMPT_UNAVAILABLE, /* leader changed, request timed out: idempotent ones go elsewhere */
        ATTEMPT_NO_LEADER,   /* refused before it was proposed (hasleader): safe to send elsewhere */
        ATTEMPT_RECONNECT    /* gRPC answered over HTTP/1.1 (not etcd's gRPC): again, on a fresh connection */
};

static bool is_invalid_token(int code, const char *msg) {
        return code == 16 || (msg && strstr(msg, "invalid auth token"));
}

/* One request: a JSON body to the gateway, or a framed message to a gRPC method. */
struct request {
        const char *path;
        const void *body;
        size_t len;
};

/* The answer: the gateway's JSON, or the gRPC response message (its frame removed). */
struct answer {
        json_object *json;
        uint8_t *pb;
        size_t pb_len;
};

static enum attempt post_once(struct vgpu_etcd *e, const struct request *rq, bool with_token,
                              struct answer *ret, int *ret_r, struct vgpu_error *err) {
        const struct curl_dl *dl = e->dl;
        CURL *h = e->curl;
        const char *path = rq->path;
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s%s", e->endpoints[e->current], path) < 0) {
                *ret_r = vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
                return ATTEMPT_DONE;
        }
        char *token = with_token ? NULL : e->token;
        if (!with_token)
                e->token = NULL; /* authenticate itself goes without */
        struct curl_slist *headers = etcd_headers(e);
        if (!with_token)
                e->token = token;
        if (!headers) {
                *ret_r = vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
                return ATTEMPT_DONE;
        }
        struct buf b = {};
        struct grpc_status st = {};
        char curl_err[CURL_ERROR_SIZE] = "";
        etcd_setup_handle(e, h, url, e->timeout_ms);
        dl->easy_setopt(h, CURLOPT_POST, 1L);
        dl->easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        dl->easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) rq->len);
        dl->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        dl->easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
        dl->easy_setopt(h, CURLOPT_WRITEDATA, &b);
        dl->easy_setopt(h, CURLOPT_HEADERFUNCTION, e->grpc ? etcd_grpc_header : NULL);
        dl->easy_setopt(h, CURLOPT_HEADERDATA, e->grpc ? &st : NULL);
        dl->easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        CURLcode cc = dl->easy_perform(h);
        long status = 0, sent = 0, version = 0;
        dl->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        dl->easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
        dl->easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
        bool was_live = e->h2_live;
        e->h2_live = e->grpc && cc == CURLE_OK && version == CURL_HTTP_VERSION_2_0;
        dl->easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        dl->easy_setopt(h, CURLOPT_HEADERFUNCTION, NULL);
        dl->easy_setopt(h, CURLOPT_HEADERDATA, NULL);
        dl->easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        dl->slist_free_all(headers);
        _cleanup_free_ char *data = b.data;

        if (e->grpc && was_live && cc == CURLE_OK && version != CURL_HTTP_VERSION_2_0) {
                *ret_r = vgpu_error_set(err, -EPROTO, "etcd %s%s: answered over HTTP/1.1, not gRPC",
                                        e->endpoints[e->current], path);
                return ATTEMPT_RECONNECT;
        }
        if (cc != CURLE_OK) {
                const char *why = *curl_err ? curl_err : dl->easy_strerror(cc);
                switch (cc) {
                case CURLE_COULDNT_RESOLVE_HOST:
                case CURLE_COULDNT_CONNECT:
                        *ret_r = vgpu_error_set(err, -ECONNREFUSED, "etcd %s: %s", e->endpoints[e->current],
                                                why);
                        return ATTEMPT_NOT_SENT;
                case CURLE_OPERATION_TIMEDOUT:
                        *ret_r = vgpu_error_set(err, -ETIMEDOUT, "etcd %s%s: %s", e->endpoints[e->current],
                                                path, why);
                        return sent > 0 ? ATTEMPT_UNKNOWN : ATTEMPT_NOT_SENT;
                case CURLE_SEND_ERROR:
                case CURLE_RECV_ERROR:
                case CURLE_GOT_NOTHING:
                case CURLE_PARTIAL_FILE:
                case CURLE_HTTP2:
                case CURLE_HTTP2_STREAM:
                case CURLE_SSL_CONNECT_ERROR:
                        *ret_r = vgpu_error_set(err, -ECONNRESET, "etcd %s%s: %s", e->endpoints[e->current],
                                                path, why);
                        return sent > 0 && cc != CURLE_SSL_CONNECT_ERROR ? ATTEMPT_UNKNOWN : ATTEMPT_NOT_SENT;
                default:
                        *ret_r = vgpu_error_set(err, -EPROTO, "etcd %s%s: %s", e->endpoints[e->current], path,
                                                why);
                        return ATTEMPT_DONE;
                }
        }
        int code;
        const char *msg;
        json_object *answer = NULL;
        if (e->grpc) {
                if (status == 200 && st.have_code && st.code == 0) {
                        int r = etcd_grpc_unframe(data, b.len, &ret->pb, &ret->pb_len);
                        *ret_r = r < 0 ? vgpu_error_set(err, r, "etcd %s%s: %s", e->endpoints[e->current],
                                                        path,
                                                        r == -ENOMEM ? "out of memory" : "bad gRPC answer")
                                       : 0;
                        return ATTEMPT_DONE;
                }
                code = st.have_code ? st.code : 0;
                msg = st.have_code ? st.message : (data ? data : NULL);
        } else {
                answer = data ? json_tokener_parse(data) : NULL;
                if (status == 200 && answer) {
                        ret->json = answer;
                        *ret_r = 0;
                        return ATTEMPT_DONE;
                }
                /* the gateway's error: {"error": "...", "code": N, "message": "..."} */
                json_object *v;
                code = (int) etcd_json_int64(answer, "code");
                msg = answer && json_object_object_get_ex(answer, "message", &v) ? json_object_get_string(v)
                                                                                 : NULL;
                if (!msg && answer && json_object_object_get_ex(answer, "error", &v))
                        msg = json_object_get_string(v);
        }
        enum attempt a = ATTEMPT_DONE;
        int r = code ? etcd_grpc_errno(code) : -EIO;
        if (with_token && e->user && is_invalid_token(code, msg))
                a = ATTEMPT_REAUTH;
        else if ((code == 14 || status == 503) && msg && strstr(msg, "no leader"))
                a = ATTEMPT_NO_LEADER, r = -EAGAIN;
        else if (code == 14 || status == 503)
                a = ATTEMPT_UNAVAILABLE, r = -EAGAIN;
        *ret_r = vgpu_error_set(err, r, "etcd %s%s: %s %ld: %s", e->endpoints[e->current], path,
                                e->grpc && status == 200 ? "gRPC status" : "HTTP",
                                e->grpc && status == 200 ? (long) code : status,
                                msg && *msg ? msg : (data && !e->grpc ? data : "no answer"));
        json_object_put(answer);
        return a;
}

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int call(struct vgpu_etcd *e, const struct request *rq, bool idempotent, bool with_token,
                struct answer *ret, struct vgpu_error *err) {
        if (with_token && e->user && !e->token) {
                int r = etcd_authenticate(e, err);
                if (r < 0)
                        return r;
        }
        bool reauthed = false, reconnected = false;
        int r = -EIO;
        /* every endpoint once; while members answer "no leader", on for as long as an election
         * can take (1 s election timeout here, a few rounds of votes) */
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long patience_ms = e->timeout_ms * 2 > 3000 ? e->timeout_ms * 2 : 3000;
        bool waiting = false;
        for (size_t i = 0;; i++) {
                enum attempt a = post_once(e, rq, with_token, ret, &r, err);
                if (a == ATTEMPT_DONE)
                        return r;
                if (a == ATTEMPT_RECONNECT && !reconnected) {
                        reconnected = true;
                        i--; /* the same endpoint again, on a fresh connection */
                        continue;
                }
                if (a == ATTEMPT_REAUTH) {
                        if (reauthed)
                                return r;
                        reauthed = true;
                        free(e->token);
                        e->token = NULL;
                        r = etcd_authenticate(e, err);
                        if (r < 0)
                                return r;
                        i--; /* the same endpoint again, with the new token */
                        continue;
                }
                e->current = (e->current + 1) % e->n_endpoints;
                e->h2_live = false;
                if (!idempotent && (a == ATTEMPT_UNKNOWN || a == ATTEMPT_UNAVAILABLE))
                        return r; /* may have been applied: the caller re-reads */
                waiting |= a == ATTEMPT_NO_LEADER || a == ATTEMPT_UNAVAILABLE;
                if ((i + 1) % e->n_endpoints != 0)
                        continue;
                /* a round over: refused or timed out everywhere ends it; "no leader" waits a bit */
                clock_gettime(CLOCK_MONOTONIC, &now);
                long elapsed = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
                if (!waiting || elapsed >= patience_ms)
                        return r;
                waiting = false;
                sleep_ms(100);
        }
}

static int call_json(struct vgpu_etcd *e, const char *path, json_object *body, bool idempotent,
                     bool with_token, json_object **ret, struct vgpu_error *err) {
        const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
        if (!text)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        struct request rq = { path, text, strlen(text) };
        struct answer a = {};
        int r = call(e, &rq, idempotent, with_token, &a, err);
        *ret = a.json;
        return r;
}

int etcd_call(struct vgpu_etcd *e, const char *path, json_object *body, bool idempotent, json_object **ret,
              struct vgpu_error *err) {
        return call_json(e, path, body, idempotent, true, ret, err);
}

static int call_grpc(struct vgpu_etcd *e, const char *method, const struct pb_writer *msg, bool idempotent,
                     bool with_token, uint8_t **ret, size_t *ret_len, struct vgpu_error *err) {
        _cleanup_free_ uint8_t *framed = NULL;
        size_t len;
        if (msg->oom || !(framed = etcd_grpc_frame(msg, &len)))
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        struct request rq = { method, framed, len };
        struct answer a = {};
        int r = call(e, &rq, idempotent, with_token, &a, err);
        *ret = a.pb;
        *ret_len = a.pb_len;
        return r;
}

int etcd_grpc_call(struct vgpu_etcd *e, const char *method, const struct pb_writer *msg, bool idempotent,
                   uint8_t **ret, size_t *ret_len, struct vgpu_error *err) {
        return call_grpc(e, method, msg, idempotent, true, ret, ret_len, err);
}

/* The token from an AuthenticateResponse (gRPC), or NULL. */
static char *grpc_token(const uint8_t *msg, size_t len) {
        struct pb_reader rd = pb_reader_new(msg, len);
        struct pb_field f;
        while (pb_next(&rd, &f) > 0)
                if (f.number == 2 && f.wire == PB_LEN)
                        return pb_strndup(&f, NULL);
        return NULL;
}

int etcd_authenticate(struct vgpu_etcd *e, struct vgpu_error *err) {
        json_object *answer = NULL, *t;
        _cleanup_free_ char *grpc_answer_token = NULL;
        int r;
        if (e->grpc) {
                /* AuthenticateRequest { name = 1; password = 2; } */
                struct pb_writer w = {};
                pb_put_string(&w, 1, e->user);
                pb_put_string(&w, 2, strempty(e->password));
                _cleanup_free_ uint8_t *msg = NULL;
                size_t len = 0;
                r = call_grpc(e, "/etcdserverpb.Auth/Authenticate", &w, true, false, &msg, &len, err);
                if (w.data)
                        explicit_bzero(w.data, w.len);
                pb_writer_free(&w);
                if (r >= 0 && !(grpc_answer_token = grpc_token(msg, len)))
                        grpc_answer_token = strdup("");
                if (r >= 0 && !grpc_answer_token)
                        return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        } else {
                json_object *body = json_object_new_object();
                if (!body || json_object_object_add(body, "name", json_object_new_string(e->user)) < 0 ||
                    json_object_object_add(body, "password", json_object_new_string(strempty(e->password))) <
                            0) {
                        json_object_put(body);
                        return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
                }
                r = call_json(e, "/v3/auth/authenticate", body, true, false, &answer, err);
                json_object_put(body);
        }
        if (r < 0) {
                /* the message names the request; keep it, ahead of ours (err->message is both) */
                char why[VGPU_ERROR_MESSAGE_MAX];
                snprintf(why, sizeof(why), "%s", err ? err->message : "");
                if (strstr(why, "CommonName of client"))
                        /* etcd with --client-cert-auth and auth on refuses a gateway client whose
                         * certificate has a CN (it cannot carry CN-based auth through the gateway) */
                        return vgpu_error_set(
                                err, r,
                                "etcd user '%s': authentication failed: the client certificate has a "
                                "CommonName, which etcd's gateway refuses when auth is on; use one "
                                "without CN (%s)",
                                e->user, why);
                return vgpu_error_set(err, r, "etcd user '%s': authentication failed: %s", e->user, why);
        }
        const char *token = grpc_answer_token                                ? grpc_answer_token
                            : json_object_object_get_ex(answer, "token", &t) ? json_object_get_string(t)
                                                                             : NULL;
        if (!token || !*token) {
                json_object_put(answer);
                return vgpu_error_set(err, -EPROTO, "etcd user '%s': authenticate answered no token",
                                      e->user);
        }
        free(e->token);
        e->token = strdup(token);
        json_object_put(answer);
        return e->token ? 0 : vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
}

/* ---- key-value ---- */

static json_object *range_request(const char *key, bool prefix, int64_t revision, int64_t min_mod_revision) {
        json_object *o = json_object_new_object();
        if (!o || etcd_json_add_key(o, key, prefix) < 0 ||
            (revision > 0 && json_object_object_add(o, "revision", etcd_json_new_int64(revision)) < 0) ||
            (min_mod_revision > 0 &&
             json_object_object_add(o, "min_mod_revision", etcd_json_new_int64(min_mod_revision)) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int range(struct vgpu_etcd *e, const char *key, bool prefix, int64_t revision,
                 int64_t min_mod_revision, struct vgpu_etcd_range *ret, struct vgpu_error *err) {
        if (!e || !key || !ret)
                return vgpu_error_set(err, -EINVAL, "etcd range: no key");
        if (e->grpc)
                return etcd_grpc_range(e, key, prefix, revision, min_mod_revision, ret, err);
        json_object *body = range_request(key, prefix, revision, min_mod_revision), *answer = NULL;
        if (!body)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        int r = etcd_call(e, "/v3/kv/range", body, true, &answer, err);
        json_object_put(body);
        if (r < 0)
                return r;
        r = etcd_range_parse(answer, ret);
        json_object_put(answer);
        return r < 0 ? vgpu_error_set(err, r, "etcd range '%s': bad answer", key) : 0;
}

_public_ int vgpu_etcd_get(struct vgpu_etcd *e, const char *key, struct vgpu_etcd_range *ret,
                           struct vgpu_error *err) {
        return range(e, key, false, 0, 0, ret, err);
}

_public_ int vgpu_etcd_range_prefix(struct vgpu_etcd *e, const char *prefix, int64_t revision,
                                    int64_t min_mod_revision, struct vgpu_etcd_range *ret,
                                    struct vgpu_error *err) {
        return range(e, prefix, true, revision, min_mod_revision, ret, err);
}

static json_object *put_request(const char *key, const char *value, int64_t lease) {
        json_object *o = json_object_new_object();
        _cleanup_free_ char *v = etcd_base64_encode(strempty(value), strlen(strempty(value)));
        if (!o || !v || etcd_json_add_key(o, key, false) < 0 ||
            json_object_object_add(o, "value", json_object_new_string(v)) < 0 ||
            (lease != 0 && json_object_object_add(o, "lease", etcd_json_new_int64(lease)) < 0)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static json_object *delete_request(const char *key, bool prefix) {
        json_object *o = json_object_new_object();
        if (!o || etcd_json_add_key(o, key, prefix) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* A write that answers only with its header: body sent (and freed: NULL is out of memory), the
 * revision it made into *ret_revision when asked. */
static int write_call(struct vgpu_etcd *e, const char *path, json_object *body, int64_t *ret_revision,
                      struct vgpu_error *err) {
        json_object *answer = NULL;
        if (!body)
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        /* a put of the same value twice, or a delete twice, leaves the same state: safe to send
         * again elsewhere */
        int r = etcd_call(e, path, body, true, &answer, err);
        json_object_put(body);
        if (r < 0)
                return r;
        if (ret_revision)
                *ret_revision = etcd_header_revision(answer);
        json_object_put(answer);
        return 0;
}

_public_ int vgpu_etcd_put(struct vgpu_etcd *e, const char *key, const char *value, int64_t lease,
                           int64_t *ret_revision, struct vgpu_error *err) {
        if (!e || !key)
                return vgpu_error_set(err, -EINVAL, "etcd put: no key");
        if (e->grpc)
                return etcd_grpc_put(e, key, value, lease, ret_revision, err);
        return write_call(e, "/v3/kv/put", put_request(key, value, lease), ret_revision, err);
}

_public_ int vgpu_etcd_delete(struct vgpu_etcd *e, const char *key, bool prefix, int64_t *ret_revision,
                              struct vgpu_error *err) {
        if (!e || !key)
                return vgpu_error_set(err, -EINVAL, "etcd delete: no key");
        if (e->grpc)
                return etcd_grpc_delete(e, key, prefix, ret_revision, err);
        return write_call(e, "/v3/kv/deleterange", delete_request(key, prefix), ret_revision, err);
}

_public_ int vgpu_etcd_compact(struct vgpu_etcd *e, int64_t revision, struct vgpu_error *err) {
        if (!e)
                return vgpu_error_set(err, -EINVAL, "etcd compact: no client");
        if (e->grpc)
                return etcd_grpc_compact(e, revision, err);
        json_object *body = json_object_new_object(), *answer = NULL;
        if (!body || json_object_object_add(body, "revision", etcd_json_new_int64(revision)) < 0 ||
            json_object_object_add(body, "physical", json_object_new_boolean(true)) < 0) {
                json_object_put(body);
                return vgpu_error_set(err, -ENOMEM, "etcd client: out of memory");
        }
        int r = etcd_call(e, "/v3/kv/compaction", body, true, &answer, err);
        json_object_put(body);
        json_object_put(answer);
        return r;
}
