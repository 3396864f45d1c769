/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon-client.c — create, remove and apply through vgpud's local API (see daemon-client.h).
 *
 * HTTP is libcurl's (CURLOPT_UNIX_SOCKET_PATH), loaded with dlopen() only once a daemon has
 * accepted our connection: linked, its 30-odd libraries would add about 4 ms to every vgpuctl
 * command, `list` included, which never talks to the daemon (lib/assign/virt-dl.c does the
 * same for libvirt). Whether the daemon runs is asked first with a plain connect(), so a stale
 * socket costs no dlopen either.
 */
#include <curl/curl.h>
#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "vgpu/root.h"
#include "daemon-client.h"

/* ---- finding the daemon ---- */

static int socket_path(char *buf, size_t size) {
        const char *env = getenv(DAEMON_SOCKET_ENV);
        if (env && *env) {
                snprintf(buf, size, "%s", env);
                return strlen(env) < size ? 0 : -ENAMETOOLONG;
        }
        return vgpu_root_path(buf, size, VGPU_DAEMON_SOCKET);
}

/* How long vgpuctl waits for the daemon: to be let in (its backlog full: it is overloaded, or
 * hung), and for the whole answer (VGPUCTL_DAEMON_TIMEOUT seconds, DAEMON_TIMEOUT_S without).
 * Without these a daemon that stopped answering held `vgpuctl remove` for as long as it did. */
#define DAEMON_CONNECT_TIMEOUT_S 5
#define DAEMON_TIMEOUT_S         300

static long daemon_timeout_s(void) {
        const char *e = getenv(DAEMON_TIMEOUT_ENV);
        char *end;
        long v = e && *e ? strtol(e, &end, 10) : 0;
        return e && *e && !*end && v > 0 ? v : DAEMON_TIMEOUT_S;
}

/* A connected socket, or -errno: -ENOENT/-ECONNREFUSED (and -ENOTSOCK, -ENOTDIR) mean no daemon,
 * -EAGAIN that it did not let us in within DAEMON_CONNECT_TIMEOUT_S. */
static int connect_to(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* a UNIX socket's connect() waits for room in the backlog at most this long */
        struct timeval tv = { .tv_sec = DAEMON_CONNECT_TIMEOUT_S };
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static void user_name(char *buf, size_t size) {
        struct passwd *pw = getpwuid(geteuid());
        if (pw)
                snprintf(buf, size, "%s", pw->pw_name);
        else
                snprintf(buf, size, "uid %u", (unsigned) geteuid());
}

static int refused(const char *group) {
        char user[256];
        user_name(user, sizeof(user));
        return cli_error(EXIT_FAILED, "vgpud refused: %s is neither root nor in group %s", user, group);
}

/* EXIT_OK when the daemon's socket (put in path) accepts a connection; DAEMON_DIRECT when the
 * verb is to run here; or the exit status of an error already printed. */
static int find_daemon(const struct cli *cli, char *path, size_t size) {
        if (cli->daemon == CLI_DAEMON_NEVER)
                return DAEMON_DIRECT;
        if (socket_path(path, size) < 0)
                return cli_error(EXIT_FAILED, "vgpud's socket path is too long: %s", path);
        int fd = connect_to(path);
        if (fd >= 0) {
                close(fd); /* it answers; curl makes its own connection */
                return EXIT_OK;
        }
        /* no socket file, or one no daemon listens on any more (it was killed): run here */
        if (fd == -ENOENT || fd == -ECONNREFUSED || fd == -ENOTSOCK || fd == -ENOTDIR) {
                if (cli->daemon != CLI_DAEMON_ALWAYS)
                        return DAEMON_DIRECT;
                return cli_error(EXIT_FAILED, "vgpud is not running (%s: %s), and --daemon needs it", path,
                                 strerror(-fd));
        }
        if (fd == -EAGAIN || fd == -EWOULDBLOCK)
                return cli_error(EXIT_FAILED,
                                 "vgpud at %s did not let us in within %d s (overloaded, or hung); --direct "
                                 "runs without it",
                                 path, DAEMON_CONNECT_TIMEOUT_S);
        if (fd == -EACCES) {
                /* the socket is 0660 root:GROUP (`vgpuctl harden`): the daemon's refusal, earlier */
                struct stat st;
                struct group *g = stat(path, &st) == 0 ? getgrgid(st.st_gid) : NULL;
                return refused(g ? g->gr_name : "vgpu");
        }
        return cli_error(EXIT_FAILED, "cannot connect to vgpud at %s: %s (--direct runs without it)", path,
                         strerror(-fd));
}

/* ---- one request ---- */

struct request {
        const char *method;
        const char *path; /* with its query, escaped */
        const char *body; /* NULL: none */
        size_t body_size;
        const char *content_type;
};

static size_t collect(char *data, size_t size, size_t n, void *userdata) {
        return fwrite(data, size, n, userdata) * size;
}

/* The message of an error body {"error": ..., "group"?: ...}; NULL when it is not one. */
static char *error_message(const char *body, char **ret_group) {
        json_object *obj = json_tokener_parse(body), *v;
        char *msg = NULL;
        if (obj && json_object_object_get_ex(obj, "error", &v) && json_object_is_type(v, json_type_string))
                msg = strdup(json_object_get_string(v));
        if (obj && json_object_object_get_ex(obj, "group", &v) && json_object_is_type(v, json_type_string))
                *ret_group = strdup(json_object_get_string(v));
        json_object_put(obj);
        return msg;
}

/* Print what the daemon answered as a direct run would have printed it; the exit status. */
static int print_reply(long status, const char *body, size_t size) {
        if (status >= 200 && status < 300) {
                fwrite(body, 1, size, stdout);
                return fflush(stdout) == 0
                               ? EXIT_OK
                               : cli_error(EXIT_FAILED, "writing the output: %s", strerror(errno));
        }
        char *group = NULL, *msg = error_message(body, &group);
        int r;
        if (status == 403)
                r = refused(group ? group : "vgpu");
        else if (msg)
                r = cli_error(EXIT_FAILED, "%s", msg); /* the library's message, as a direct run prints it */
        else
                r = cli_error(EXIT_FAILED, "vgpud answered HTTP %ld: %.*s", status,
                              (int) (size > 200 ? 200 : size), body);
        free(msg);
        free(group);
        return r;
}

static int send_request(const struct cli *cli, const struct request *req) {
        char path[4096], why[512];
        int r = find_daemon(cli, path, sizeof(path));
        if (r != EXIT_OK)
                return r;
        const struct curl_dl *c = curl_load(why, sizeof(why));
        if (!c)
                return cli_error(EXIT_FAILED, "vgpud runs but %s; or use --direct", why);
        char *url = NULL, *body = NULL;
        size_t body_size = 0;
        FILE *out = open_memstream(&body, &body_size);
        CURL *h = c->easy_init();
        struct curl_slist *headers = NULL;
        char content_type[128];
        snprintf(content_type, sizeof(content_type), "Content-Type: %s",
                 req->content_type ? req->content_type : "application/json");
        if (asprintf(&url, "http://localhost%s%cformat=%s%s", req->path, strchr(req->path, '?') ? '&' : '?',
                     cli->json ? "json" : "text", cli->pretty ? "&pretty=true" : "") < 0)
                url = NULL;
        /* no "Expect: 100-continue" round trip before a big file */
        bool ready =
                out && h && url && (headers = c->slist_append(NULL, "Expect:")) &&
                (!req->body || c->slist_append(headers, content_type)); /* appends to a list: same head */
        CURLcode cr = CURLE_OUT_OF_MEMORY;
        long status = 0, timeout = daemon_timeout_s();
        if (ready) {
                c->easy_setopt(h, CURLOPT_URL, url);
                c->easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, path);
                c->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
                c->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long) DAEMON_CONNECT_TIMEOUT_S);
                c->easy_setopt(h, CURLOPT_TIMEOUT, timeout);
                c->easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
                c->easy_setopt(h, CURLOPT_HTTPHEADER, headers);
                if (req->body) {
                        c->easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
                        c->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_size);
                }
                c->easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
                c->easy_setopt(h, CURLOPT_WRITEDATA, out);
                cr = c->easy_perform(h);
                c->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        }
        if (h)
                c->easy_cleanup(h);
        c->slist_free_all(headers);
        free(url);
        bool bad = !out || fclose(out) != 0;
        if (cr == CURLE_COULDNT_CONNECT && cli->daemon == CLI_DAEMON_AUTO)
                r = DAEMON_DIRECT; /* it stopped since it answered, and nothing was sent */
        else if (cr == CURLE_OPERATION_TIMEDOUT)
                /* what was sent may still be under way: say so rather than retry or run it here */
                r = cli_error(EXIT_FAILED,
                              "vgpud at %s did not answer within %ld s (%s=SECONDS waits longer); a change "
                              "sent may still "
                              "complete: check with `vgpuctl list`",
                              path, timeout, DAEMON_TIMEOUT_ENV);
        else if (cr != CURLE_OK)
                r = cli_error(EXIT_FAILED, "talking to vgpud at %s: %s", path, c->easy_strerror(cr));
        else if (bad)
                r = cli_error(EXIT_FAILED, "out of memory");
        else
                r = print_reply(status, body ? body : "", body_size);
        free(body);
        return r;
}

/* ---- the verbs ---- */

/* s %-escaped for a URL's path segment or query value (RFC 3986 unreserved, and ':' of BDFs). */
static char *escape(const char *s) {
        char *e = malloc(strlen(s) * 3 + 1), *p = e;
        if (!e)
                return NULL;
        for (; *s; s++)
                if (strchr("-._~:", *s) || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
                    (*s >= 'A' && *s <= 'Z'))
                        *p++ = *s;
                else
                        p += sprintf(p, "%%%02X", (unsigned char) *s);
        *p = '\0';
        return e;
}

int daemon_create(const struct cli *cli, const struct vgpu_mdev_spec *spec, bool persist) {
        json_object *obj = json_object_new_object(), *attrs = json_object_new_array();
        if (!obj || !attrs) {
                json_object_put(obj);
                json_object_put(attrs);
                return cli_error(EXIT_FAILED, "out of memory");
        }
        json_object_object_add(obj, "parent", json_object_new_string(spec->parent));
        json_object_object_add(obj, "type", json_object_new_string(spec->type));
        if (spec->uuid[0])
                json_object_object_add(obj, "uuid", json_object_new_string(spec->uuid));
        json_object_object_add(obj, "persist", json_object_new_boolean(persist));
        json_object_object_add(obj, "auto_start", json_object_new_boolean(spec->auto_start));
        for (size_t i = 0; i < spec->n_attrs; i++) {
                json_object *a = json_object_new_object();
                json_object_object_add(a, spec->attrs[i].key, json_object_new_string(spec->attrs[i].value));
                json_object_array_add(attrs, a);
        }
        json_object_object_add(obj, "attrs", attrs);
        size_t n;
        const char *body = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &n);
        int r = body ? send_request(cli,
                                    &(struct request){ "POST", "/v1/instances", body, n, "application/json" })
                     : cli_error(EXIT_FAILED, "out of memory");
        json_object_put(obj);
        return r;
}

int daemon_remove(const struct cli *cli, const char *id) {
        char *e = escape(id), *path = NULL;
        if (!e || asprintf(&path, "/v1/instances/%s", e) < 0) {
                free(e);
                return cli_error(EXIT_FAILED, "out of memory");
        }
        int r = send_request(cli, &(struct request){ "DELETE", path, NULL, 0, NULL });
        free(path);
        free(e);
        return r;
}

int daemon_apply(const struct cli *cli, const char *text, const char *source, bool dry_run, bool force,
                 bool diff) {
        char *e = escape(source), *path = NULL;
        if (!e || asprintf(&path, "/v1/apply?source=%s%s%s%s", e, dry_run ? "&dry_run=true" : "",
                           force ? "&force=true" : "", diff ? "&diff=true" : "") < 0) {
                free(e);
                return cli_error(EXIT_FAILED, "out of memory");
        }
        int r = send_request(cli, &(struct request){ "POST", path, text, strlen(text), "application/yaml" });
        free(path);
        free(e);
        return r;
}
