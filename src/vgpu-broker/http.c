/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * http.c — libmicrohttpd for the broker: a UNIX socket (callers known by their peer
 * credentials) and optionally a TCP port with TLS and a bearer token. Unlike vgpud, whose
 * requests are quick and run on its event loop, a placement waits on etcd round trips, so MHD
 * runs a thread per connection here and each request borrows an etcd client from the pool.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker.h"
#include "dashboard.h"
#include "mhd-util.h"

#define BODY_MAX (64 * 1024)

struct http {
        struct broker *b;
        struct MHD_Daemon *local, *tcp;
        char *tls_cert, *tls_key; /* PEM text for MHD */
};

struct listener_ctx {
        struct broker *b;
        bool local;
        struct mhd_handler handler; /* MHD's cls: userdata is this */
};

static struct listener_ctx ctx_local, ctx_tcp;

static enum MHD_Result queue(struct MHD_Connection *c, struct api_reply *r) {
        struct MHD_Response *resp = mhd_response_new(r->body, r->size, r->content_type);
        if (!resp)
                return MHD_NO;
        if (r->retry_after > 0) {
                char s[16];
                snprintf(s, sizeof(s), "%d", r->retry_after);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, s);
        }
        if (r->status == 401)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                        "Bearer realm=\"vgpu-broker\"");
        enum MHD_Result q = MHD_queue_response(c, r->status, resp);
        MHD_destroy_response(resp);
        return q;
}

/* constant time: the token's length aside, how much matched does not show in the timing */
static bool token_ok(const char *header, const char *token) {
        if (!header || strncmp(header, "Bearer ", 7) != 0)
                return false;
        const char *got = header + 7;
        size_t n = strlen(token), m = strlen(got);
        unsigned char diff = n != m;
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) (token[i] ^ (i < m ? got[i] : 0));
        return diff == 0;
}

static long peer_uid(struct MHD_Connection *c, pid_t *ret_pid) {
        struct ucred cred;
        if (mhd_peer_credentials(c, &cred) < 0)
                return -1;
        *ret_pid = cred.pid;
        return (long) cred.uid;
}

/* The whole request is in (mhd-util.c collected its body): settle the caller and answer. */
static enum MHD_Result on_request(void *userdata, struct MHD_Connection *c, struct mhd_request *st,
                                  const char *method, const char *url) {
        struct listener_ctx *l = userdata;
        struct broker *b = l->b;
        struct api_reply reply = {};
        char peer[96] = "";
        struct api_request req = { .method = method,
                                   .path = url,
                                   .body = st->body ? st->body : "",
                                   .body_size = st->size,
                                   .local = l->local,
                                   .uid = -1,
                                   .peer = peer };
        if (l->local) {
                pid_t pid = 0;
                req.uid = peer_uid(c, &pid);
                snprintf(peer, sizeof(peer), "uid %ld (pid %d)", req.uid, (int) pid);
        } else {
                char addr[INET6_ADDRSTRLEN];
                mhd_client_address(c, addr, sizeof(addr));
                snprintf(peer, sizeof(peer), "client %s", addr);
        }
        bool open_path =
                strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 || strcmp(url, "/metrics") == 0;
        /* the dashboard: its page loads without the token (it asks for one), whoami checks it */
        open_path = open_path || dashboard_open_path(url);
        req.authorized =
                l->local || !b->token ||
                token_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                         b->token);
        if (st->too_large) {
                reply.status = 413;
                reply.body = strdup("{\"error\":\"request body larger than 64 KiB\"}");
        } else if (!req.authorized && !open_path) {
                reply.status = 401;
                reply.body = strdup("{\"error\":\"a bearer token is needed (Authorization: Bearer ...)\"}");
        } else
                api_dispatch(b, &req, &reply);
        if (!reply.body) {
                reply.status = 500;
                reply.body = strdup("{\"error\":\"out of memory\"}");
        }
        reply.size = reply.body ? (reply.size ? reply.size : strlen(reply.body)) : 0;
        broker_log(LOG_DEBUG, "%s %s from %s: %u", method, url, peer, reply.status);
        return queue(c, &reply);
}

static void on_mhd_log(const char *line) {
        broker_log(LOG_DEBUG, "libmicrohttpd: %s", line);
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&buf, &size);
        char chunk[4096];
        size_t n;
        while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(f);
        if (m)
                fclose(m);
        return buf;
}

static int open_unix(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* another broker answering here? then do not steal its socket */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
                close(fd);
                return -EADDRINUSE;
        }
        close(fd);
        (void) unlink(path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
                return -errno;
        mode_t old = umask(0117); /* 0660: the owner and the socket's group */
        int r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0 ? -errno : 0;
        umask(old);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

static int open_tcp(const char *listen_spec, unsigned *ret_port) {
        char host[128];
        const char *colon = strrchr(listen_spec, ':');
        if (!colon || (size_t) (colon - listen_spec) >= sizeof(host))
                return -EINVAL;
        memcpy(host, listen_spec, (size_t) (colon - listen_spec));
        host[colon - listen_spec] = '\0';
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(colon + 1)) };
        if (inet_pton(AF_INET, host, &in.sin_addr) != 1)
                return -EINVAL;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        socklen_t len = sizeof(in);
        if (bind(fd, (struct sockaddr *) &in, sizeof(in)) < 0 || listen(fd, SOMAXCONN) < 0 ||
            getsockname(fd, (struct sockaddr *) &in, &len) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_port = ntohs(in.sin_port);
        return fd;
}

static struct MHD_Daemon *start(struct http *h, struct listener_ctx *l, int fd, bool tls) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                         MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
        if (tls)
                return MHD_start_daemon(
                        flags, 0, NULL, NULL, mhd_on_request, &l->handler, MHD_OPTION_EXTERNAL_LOGGER,
                        mhd_log, &l->handler, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
                        mhd_on_completed, &l->handler, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                        MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_HTTPS_MEM_CERT, h->tls_cert,
                        MHD_OPTION_HTTPS_MEM_KEY, h->tls_key, MHD_OPTION_END);
        return MHD_start_daemon(flags, 0, NULL, NULL, mhd_on_request, &l->handler, MHD_OPTION_EXTERNAL_LOGGER,
                                mhd_log, &l->handler, MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_NOTIFY_COMPLETED, mhd_on_completed, &l->handler,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30, MHD_OPTION_CONNECTION_LIMIT,
                                1024u, MHD_OPTION_END);
}

int http_start(struct broker *b, struct http **ret) {
        struct http *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->b = b;
        struct mhd_handler handler = { .body_max = BODY_MAX, .answer = on_request, .log = on_mhd_log };
        ctx_local = (struct listener_ctx){ b, true, handler };
        ctx_tcp = (struct listener_ctx){ b, false, handler };
        ctx_local.handler.userdata = &ctx_local;
        ctx_tcp.handler.userdata = &ctx_tcp;
        if (b->cfg.socket_path) {
                int fd = open_unix(b->cfg.socket_path);
                if (fd < 0) {
                        broker_log(LOG_ERR, "%s: cannot listen: %s", b->cfg.socket_path,
                                   fd == -EADDRINUSE ? "another broker answers there" : strerror(-fd));
                        http_stop(h);
                        return fd;
                }
                if (!(h->local = start(h, &ctx_local, fd, false))) {
                        close(fd);
                        http_stop(h);
                        return -EIO;
                }
                broker_log(LOG_INFO, "listening on %s", b->cfg.socket_path);
        }
        if (b->cfg.listen) {
                bool tls = b->cfg.tls_cert || b->cfg.tls_key;
                if (tls &&
                    (!b->cfg.tls_cert || !b->cfg.tls_key || !(h->tls_cert = read_file(b->cfg.tls_cert)) ||
                     !(h->tls_key = read_file(b->cfg.tls_key)))) {
                        broker_log(LOG_ERR, "--tls-cert and --tls-key: both needed, readable PEM files");
                        http_stop(h);
                        return -EINVAL;
                }
                unsigned port = 0;
                int fd = open_tcp(b->cfg.listen, &port);
                if (fd < 0) {
                        broker_log(LOG_ERR, "--listen %s: cannot listen: %s", b->cfg.listen, strerror(-fd));
                        http_stop(h);
                        return fd;
                }
                if (!(h->tcp = start(h, &ctx_tcp, fd, tls))) {
                        close(fd);
                        http_stop(h);
                        return -EIO;
                }
                broker_log(LOG_INFO, "listening on %s port %u%s", b->cfg.listen, port, tls ? " (TLS)" : "");
        }
        *ret = h;
        return 0;
}

void http_stop(struct http *h) {
        if (!h)
                return;
        if (h->local)
                MHD_stop_daemon(h->local);
        if (h->tcp)
                MHD_stop_daemon(h->tcp);
        if (h->local && h->b->cfg.socket_path)
                (void) unlink(h->b->cfg.socket_path);
        free(h->tls_cert);
        free(h->tls_key);
        free(h);
}
