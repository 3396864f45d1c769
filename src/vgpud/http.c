/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * http.c — libmicrohttpd under sd-event (see http.h). MHD runs in external-poll epoll mode: its
 * epoll fd is one io source of our loop, its timeout one timer, so requests are handled on the
 * loop's thread one at a time and no state needs a lock. Each request's body is collected up
 * to API_BODY_MAX, the caller's access is settled (peer credentials or bearer token), and
 * api_dispatch() does the rest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vgpu/root.h"
#include "vgpu/config.h"
#include "http.h"
#include "log.h"
#include "mhd-util.h"

/* Connections at once: all of them (MHD's limit), those of callers who may only read on the
 * local socket (the rest is kept for root and the group), one such uid's, and one address's
 * on a TCP port. A caller past its share is answered 503 and closed at once, so neither
 * slow nor many connections of one account keep another out. */
#define CONNECTIONS_MAX             1024u
#define CONNECTIONS_READERS_MAX     768u
#define CONNECTIONS_PER_UID_MAX     32u
#define CONNECTIONS_PER_ADDRESS_MAX 64u

/* One open connection: whose, and by when it must have sent what it is sending. */
struct peer_conn {
        struct peer_conn *prev, *next;
        int fd;
        uid_t uid;
        bool counted;           /* a reader's on the local socket: in its uid's share */
        bool cut;               /* shut down: past its deadline, or refused */
        uint64_t deadline_usec; /* CLOCK_MONOTONIC */
};

struct listener {
        struct vgpud *d;
        enum listener_kind kind;
        struct MHD_Daemon *mhd;
        sd_event_source *io, *timer;
        sd_event_source *sweep; /* cuts connections past their deadline, at the earliest */
        struct peer_conn *conns;
        unsigned n_readers; /* counted connections */
        char *unix_path;    /* the socket file we made, to remove at the end */
        char name[128];
        struct mhd_handler handler; /* MHD's cls: userdata is this listener */
};

/* What one request has gathered between MHD's calls. */
struct conn {
        struct mhd_request req;   /* the body, up to the limit of this request's endpoint */
        enum vgpud_access access; /* settled from the headers, before any body is read */
        char caller[96];          /* "uid 65534 (pid 42)" */
        char peer[64];            /* "uid 65534": whose denials are coalesced */
};

/* The largest body the endpoint takes: host.yaml's limit for POST /v1/apply (the one the
 * library applies to files, so a file applies alike with --direct or through us), 1 MiB for
 * the rest (an instance's JSON is a few hundred bytes). */
static size_t body_max(const char *method, const char *url) {
        bool config = (streq(method, "POST") && streq(url, "/v1/apply")) ||
                      (streq(method, "PUT") && streq(url, "/v1/config"));
        return config ? VGPU_CONFIG_SIZE_MAX : API_BODY_MAX;
}

static const char *body_max_text(size_t max) {
        return max == VGPU_CONFIG_SIZE_MAX ? VGPU_CONFIG_SIZE_MAX_TEXT ", the limit for host.yaml" : "1 MiB";
}

/* ---- deadlines and shares ---- */

static uint64_t header_timeout(const struct listener *l) {
        return l->d->config->request_timeout_usec;
}

static uint64_t body_timeout(const struct listener *l) {
        return 6 * l->d->config->request_timeout_usec;
}

static struct peer_conn *peer_conn_of(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return ci ? ci->socket_context : NULL;
}

/* Shut the connection down under MHD: it reads the end and closes it (and tells on_connection). */
static void cut(struct peer_conn *pc) {
        if (pc->cut)
                return;
        pc->cut = true;
        (void) shutdown(pc->fd, SHUT_RDWR);
}

/* A connection over its caller's share: a 503 it can read, written directly (MHD has read
 * nothing yet), and the end. */
static void refuse(struct peer_conn *pc, const char *why) {
        char body[256], buf[512];
        int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", why);
        n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
                     n, body);
        if (n > 0)
                (void) send(pc->fd, buf, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
        cut(pc);
}

/* The sweep at the earliest deadline; off without connections. A deadline only moves later
 * once set, so this is needed for new connections and after each sweep. */
static void arm_sweep(struct listener *l) {
        if (!l->sweep)
                return;
        uint64_t earliest = UINT64_MAX;
        for (const struct peer_conn *pc = l->conns; pc; pc = pc->next)
                if (!pc->cut && pc->deadline_usec < earliest)
                        earliest = pc->deadline_usec;
        if (earliest == UINT64_MAX) {
                sd_event_source_set_enabled(l->sweep, SD_EVENT_OFF);
                return;
        }
        sd_event_source_set_time(l->sweep, earliest);
        sd_event_source_set_enabled(l->sweep, SD_EVENT_ONESHOT);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        struct listener *l = cls;
        struct peer_conn *pc = *socket_context;
        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                if (!pc)
                        return;
                if (pc->prev)
                        pc->prev->next = pc->next;
                else
                        l->conns = pc->next;
                if (pc->next)
                        pc->next->prev = pc->prev;
                if (pc->counted)
                        l->n_readers--;
                free(pc);
                *socket_context = NULL;
                return;
        }
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
                return;
        if (!(pc = calloc(1, sizeof(*pc)))) {
                (void) shutdown(ci->connect_fd, SHUT_RDWR); /* untracked: no deadline could hold it */
                return;
        }
        *pc = (struct peer_conn){ .fd = ci->connect_fd,
                                  .deadline_usec = now_usec(CLOCK_MONOTONIC) + header_timeout(l),
                                  .next = l->conns };
        if (l->conns)
                l->conns->prev = pc;
        l->conns = pc;
        *socket_context = pc;
        arm_sweep(l);

        struct vgpud_peer peer;
        if (l->kind != LISTENER_LOCAL || auth_peer_from_fd(pc->fd, &peer) < 0 ||
            auth_access_for_peer(&peer, l->d->have_group, l->d->group_gid) == ACCESS_WRITE)
                return; /* root and the group: no share but MHD's limit */
        unsigned same = 0;
        for (const struct peer_conn *o = l->conns; o; o = o->next)
                same += o->counted && o->uid == peer.uid;
        char why[160];
        if (same >= CONNECTIONS_PER_UID_MAX)
                snprintf(why, sizeof(why), "too many connections from uid %u (at most %u at a time)",
                         (unsigned) peer.uid, CONNECTIONS_PER_UID_MAX);
        else if (l->n_readers >= CONNECTIONS_READERS_MAX)
                snprintf(why, sizeof(why),
                         "too many connections from read-only callers (at most %u at a time)",
                         CONNECTIONS_READERS_MAX);
        else {
                pc->counted = true;
                pc->uid = peer.uid;
                l->n_readers++;
                return;
        }
        log_debug("%s: refused a connection of uid %u (pid %d): %s", l->name, (unsigned) peer.uid,
                  (int) peer.pid, why);
        refuse(pc, why);
}

static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        struct listener *l = userdata;
        (void) s, (void) usec;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        for (struct peer_conn *pc = l->conns; pc; pc = pc->next)
                if (!pc->cut && now >= pc->deadline_usec) {
                        log_debug("%s: cut a connection that did not send its request in time", l->name);
                        cut(pc);
                }
        arm_sweep(l);
        return 0;
}

static void arm(struct listener *l) {
        MHD_UNSIGNED_LONG_LONG ms;
        if (MHD_get_timeout(l->mhd, &ms) != MHD_YES) {
                sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
                return;
        }
        sd_event_source_set_time(l->timer, now_usec(CLOCK_MONOTONIC) + (uint64_t) ms * 1000);
        sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct listener *l = userdata;
        (void) s, (void) fd, (void) revents;
        MHD_run(l->mhd);
        arm(l);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct listener *l = userdata;
        (void) s, (void) usec;
        MHD_run(l->mhd);
        arm(l);
        return 0;
}

static enum MHD_Result queue(struct MHD_Connection *c, struct api_reply *reply, bool close_after) {
        struct MHD_Response *resp = mhd_response_new(reply->body, reply->size, reply->content_type);
        reply->body = NULL; /* MHD frees it with the response (or mhd_response_new did) */
        if (!resp) {
                api_reply_done(reply);
                return MHD_NO;
        }
        if (reply->allow[0])
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, reply->allow);
        if (reply->want_auth)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"vgpud\"");
        if (close_after)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        enum MHD_Result q = MHD_queue_response(c, reply->status, resp);
        MHD_destroy_response(resp);
        api_reply_done(reply);
        return q;
}

static enum MHD_Result queue_error(struct MHD_Connection *c, unsigned status, bool close_after,
                                   const char *msg) {
        struct api_reply reply = {};
        reply_error(&reply, status, "%s", msg);
        return queue(c, &reply, close_after);
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        (void) kind;
        return api_request_add_query(cls, key, value) ? MHD_YES : MHD_NO;
}

/* Who is calling and what that allows, by listener. */
static enum vgpud_access access_of(struct listener *l, struct MHD_Connection *c, char *caller, size_t size,
                                   char *peer_key, size_t key_size) {
        if (l->kind == LISTENER_LOCAL) {
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
                struct vgpud_peer peer;
                if (!ci || auth_peer_from_fd(ci->connect_fd, &peer) < 0) {
                        snprintf(caller, size, "unknown caller");
                        snprintf(peer_key, key_size, "unknown caller");
                        return ACCESS_READ;
                }
                snprintf(caller, size, "uid %u (pid %d)", (unsigned) peer.uid, (int) peer.pid);
                snprintf(peer_key, key_size, "uid %u", (unsigned) peer.uid);
                return auth_access_for_peer(&peer, l->d->have_group, l->d->group_gid);
        }
        char addr[INET6_ADDRSTRLEN];
        mhd_client_address(c, addr, sizeof(addr));
        snprintf(peer_key, key_size, "client %s", addr);
        if (l->kind == LISTENER_METRICS) {
                snprintf(caller, size, "metrics client %s", addr);
                return ACCESS_READ;
        }
        enum vgpud_access a = auth_access_for_bearer(
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                l->d->api_token);
        snprintf(caller, size, "%s client %s", a == ACCESS_NONE ? "unauthenticated" : "token", addr);
        return a;
}

/* Answer the request (its body, if any, complete in st). close_after: part of the request may
 * still be unread. */
static enum MHD_Result dispatch(struct listener *l, struct MHD_Connection *c, struct conn *st,
                                const char *method, const char *url, bool close_after) {
        if (l->d->stopping)
                return queue_error(c, 503, true, "vgpud is shutting down");
        struct api_request req = {
                .d = l->d,
                .listener = l->kind,
                .method = method,
                .path = url,
                .body = st->req.body ? st->req.body : "",
                .body_size = st->req.size,
                .access = st->access,
                .caller = st->caller,
                .peer = st->peer,
        };
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_query, &req);

        struct api_reply reply;
        api_dispatch(&req, &reply);
        log_debug("%s %s from %s: %u", method, url, st->caller, reply.status);
        return queue(c, &reply, close_after);
}

static enum MHD_Result queue_too_large(struct MHD_Connection *c, const char *method, const char *url,
                                       size_t max) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s %s: request body larger than %s", method, url, body_max_text(max));
        return queue_error(c, 413, true, msg);
}

/* MHD's first call of a request, with its headers only (mhd-util.c collects the body after). */
static enum MHD_Result on_request_begin(void *userdata, struct MHD_Connection *c, struct mhd_request *r,
                                        const char *method, const char *url) {
        struct listener *l = userdata;
        struct conn *st = (struct conn *) r;
        /* the headers are in: the body (and the answer) get their own time */
        struct peer_conn *pc = peer_conn_of(c);
        if (pc)
                pc->deadline_usec = now_usec(CLOCK_MONOTONIC) + body_timeout(l);
        r->max = body_max(method, url);
        /* Who asks is known from the headers: a caller who may not change anything is
         * answered now, without reading (or buffering) a body it sends along. */
        st->access = access_of(l, c, st->caller, sizeof(st->caller), st->peer, sizeof(st->peer));
        if (st->access < ACCESS_WRITE && !streq(method, "GET") && !streq(method, "HEAD"))
                return dispatch(l, c, st, method, url, true);
        /* refuse a body announced too big before reading any of it */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > r->max) {
                r->too_large = true;
                return queue_too_large(c, method, url, r->max);
        }
        return MHD_YES;
}

/* The body is in (mhd-util.c collected it): answer. */
static enum MHD_Result on_request(void *userdata, struct MHD_Connection *c, struct mhd_request *r,
                                  const char *method, const char *url) {
        struct listener *l = userdata;
        if (r->too_large)
                return queue_too_large(c, method, url, r->max);
        return dispatch(l, c, (struct conn *) r, method, url, false);
}

static void on_completed(void *userdata, struct MHD_Connection *c) {
        struct listener *l = userdata;
        /* kept alive: the next request's headers are due like a new connection's */
        struct peer_conn *pc = peer_conn_of(c);
        if (pc)
                pc->deadline_usec = now_usec(CLOCK_MONOTONIC) + header_timeout(l);
}

static void on_mhd_log(const char *line) {
        log_debug("libmicrohttpd: %s", line);
}

static int start(struct vgpud *d, enum listener_kind kind, int fd, const char *name, struct listener **ret) {
        struct listener *l = calloc(1, sizeof(*l));
        if (!l) {
                close(fd);
                return -ENOMEM;
        }
        l->d = d;
        l->kind = kind;
        snprintf(l->name, sizeof(l->name), "%s", name);
        l->handler = (struct mhd_handler){ .userdata = l,
                                           .request_size = sizeof(struct conn),
                                           .begin = on_request_begin,
                                           .answer = on_request,
                                           .completed = on_completed,
                                           .log = on_mhd_log };
        /* ITC: needed to quiesce (stop accepting) while finishing what is open at SIGTERM */
        /* MHD's timeout is for idleness: a byte every few seconds resets it. The deadlines of
         * on_sweep bound a request's whole time; the per-address limit means nothing on the
         * UNIX socket, where on_connection shares by uid. */
        l->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, mhd_on_request, &l->handler,
                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &l->handler, /* first, or MHD logs the rest itself */
                MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, mhd_on_completed, &l->handler,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, l, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                MHD_OPTION_CONNECTION_LIMIT, CONNECTIONS_MAX,
                kind == LISTENER_LOCAL ? MHD_OPTION_END : MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                CONNECTIONS_PER_ADDRESS_MAX, MHD_OPTION_END);
        if (!l->mhd) {
                close(fd);
                free(l);
                return -EIO;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        int r = info ? sd_event_add_io(d->event, &l->io, info->epoll_fd, EPOLLIN, on_io, l) : -EIO;
        if (r >= 0)
                r = sd_event_add_time(d->event, &l->timer, CLOCK_MONOTONIC, 0, 0, on_timer, l);
        if (r >= 0)
                r = sd_event_add_time(d->event, &l->sweep, CLOCK_MONOTONIC, 0, 50000, on_sweep, l);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->sweep, SD_EVENT_OFF);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        arm(l);
        *ret = l;
        return 0;
}

/* Is something answering on the socket file? Then another vgpud runs on this root. */
static bool socket_alive(const struct sockaddr_un *sa) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        bool alive = connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) == 0;
        close(fd);
        return alive;
}

int listener_open_local(struct vgpud *d, struct listener **ret) {
        const char *host_path = d->config->socket_path;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char path[PATH_MAX], dir[PATH_MAX];
        int r;

        if (vgpu_root_path(path, sizeof(path), host_path) < 0 || strlen(path) >= sizeof(sa.sun_path)) {
                log_error("%s%s: socket path too long (at most %zu characters)", vgpu_root_prefix(),
                          host_path, sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        snprintf(dir, sizeof(dir), "%s", host_path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if ((r = vgpu_root_mkdir_parents(dir, 0755)) < 0) {
                        log_error("%s%s: cannot create the socket's directory: %s", vgpu_root_prefix(), dir,
                                  strerror(-r));
                        return r;
                }
        }
        if (socket_alive(&sa)) {
                log_error("%s: another vgpud answers on this socket", path);
                return -EADDRINUSE;
        }
        (void) unlink(path); /* a stale socket from a daemon that died */

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* bind with the final mode already in the umask: no window where the socket is wider */
        mode_t old = umask(~d->config->socket_mode & 0777);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (r >= 0 && chmod(path, d->config->socket_mode) < 0)
                r = -errno;
        if (r >= 0 && d->have_group && chown(path, (uid_t) -1, d->group_gid) < 0)
                log_warning("%s: cannot give the socket to group %s: %s", path, d->config->group,
                            strerror(errno));
        if (r >= 0 && listen(fd, SOMAXCONN) < 0)
                r = -errno;
        if (r < 0) {
                log_error("%s: cannot listen: %s", path, strerror(-r));
                close(fd);
                return r;
        }
        struct listener *l;
        if ((r = start(d, LISTENER_LOCAL, fd, path, &l)) < 0) {
                (void) unlink(path);
                return r;
        }
        l->unix_path = strdup(path);
        *ret = l;
        return 0;
}

int listener_open_tcp(struct vgpud *d, enum listener_kind kind, const struct vgpud_addr *a,
                      struct listener **ret) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } u = {};
        socklen_t len;
        if (inet_pton(AF_INET, a->host, &u.in.sin_addr) == 1) {
                u.in.sin_family = AF_INET;
                u.in.sin_port = htons(a->port);
                len = sizeof(u.in);
        } else if (inet_pton(AF_INET6, a->host, &u.in6.sin6_addr) == 1) {
                u.in6.sin6_family = AF_INET6;
                u.in6.sin6_port = htons(a->port);
                len = sizeof(u.in6);
        } else
                return -EINVAL;
        int fd = socket(u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        int one = 1, r = 0;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, &u.sa, len) < 0 || listen(fd, SOMAXCONN) < 0 || getsockname(fd, &u.sa, &len) < 0) {
                r = -errno;
                log_error("%s%s%s:%u: cannot listen: %s", u.sa.sa_family == AF_INET6 ? "[" : "", a->host,
                          u.sa.sa_family == AF_INET6 ? "]" : "", a->port, strerror(-r));
                close(fd);
                return r;
        }
        /* the port actually bound (the configuration may say 0: any) */
        unsigned port = ntohs(u.sa.sa_family == AF_INET ? u.in.sin_port : u.in6.sin6_port);
        char name[96];
        snprintf(name, sizeof(name), "%s%s%s:%u", u.sa.sa_family == AF_INET6 ? "[" : "", a->host,
                 u.sa.sa_family == AF_INET6 ? "]" : "", port);
        return start(d, kind, fd, name, ret);
}

void listener_quiesce(struct listener *l) {
        if (!l || !l->mhd)
                return;
        MHD_socket fd = MHD_quiesce_daemon(l->mhd);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
        if (l->unix_path)
                (void) unlink(l->unix_path);
}

unsigned listener_connections(const struct listener *l) {
        if (!l || !l->mhd)
                return 0;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return info ? info->num_connections : 0;
}

const char *listener_name(const struct listener *l) {
        return l ? l->name : "-";
}

struct listener *listener_free(struct listener *l) {
        if (!l)
                return NULL;
        sd_event_source_unref(l->io);
        sd_event_source_unref(l->timer);
        l->sweep = sd_event_source_unref(l->sweep); /* MHD_stop_daemon closes the connections: no re-arming */
        if (l->mhd)
                MHD_stop_daemon(l->mhd);
        if (l->unix_path) {
                (void) unlink(l->unix_path);
                free(l->unix_path);
        }
        free(l);
        return NULL;
}
