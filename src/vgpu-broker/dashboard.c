/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dashboard.c — the web dashboard's side of the broker: its static files (installed with the
 * broker in datadir/vgpu-broker/dashboard, or --dashboard-dir) and GET /v1/whoami. Only the
 * page's own file names are served, looked up in a fixed table: a path is never joined onto the
 * directory, so no "..", "%2e%2e" or symlink in the URL can reach another file. The files are
 * read at each request (a few KiB): an upgraded package shows at the next reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api-util.h"
#include "dashboard.h"

#define STATIC_MAX (1024 * 1024)

static const struct {
        const char *path, *file, *content_type;
} files[] = {
        { "/", "index.html", "text/html; charset=utf-8" },
        { "/index.html", "index.html", "text/html; charset=utf-8" },
        { "/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8" },
        { "/dashboard.css", "dashboard.css", "text/css; charset=utf-8" },
};

bool dashboard_static_path(const char *path) {
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
                if (strcmp(path, files[i].path) == 0)
                        return true;
        return false;
}

bool dashboard_open_path(const char *path) {
        return dashboard_static_path(path) || strcmp(path, "/v1/whoami") == 0;
}

static int read_all(int dirfd, const char *name, char **ret, size_t *ret_size) {
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX) {
                close(fd);
                return -EINVAL;
        }
        char *buf = malloc((size_t) st.st_size + 1);
        size_t n = 0;
        ssize_t k = 0;
        while (buf && n < (size_t) st.st_size && (k = read(fd, buf + n, (size_t) st.st_size - n)) > 0)
                n += (size_t) k;
        close(fd);
        if (buf)
                buf[n] = '\0';
        if (!buf || k < 0) {
                free(buf);
                return buf ? -EIO : -ENOMEM;
        }
        *ret = buf;
        *ret_size = n;
        return 0;
}

void dashboard_static(struct broker *b, const struct api_request *req, struct api_reply *reply) {
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
                return reply_error(reply, 405, "%s %s: method not allowed", req->method, req->path);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                if (strcmp(req->path, files[i].path) != 0)
                        continue;
                int dirfd = open(b->cfg.dashboard_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int r = dirfd < 0 ? -errno : read_all(dirfd, files[i].file, &reply->body, &reply->size);
                if (dirfd >= 0)
                        close(dirfd);
                if (r < 0) {
                        broker_log(LOG_WARN, "dashboard: %s/%s: %s", b->cfg.dashboard_dir, files[i].file,
                                   strerror(-r));
                        return reply_error(reply, 404, "%s: the dashboard is not installed here (%s/%s: %s)",
                                           req->path, b->cfg.dashboard_dir, files[i].file, strerror(-r));
                }
                reply->status = 200;
                reply->content_type = files[i].content_type;
                return;
        }
        reply_error(reply, 404, "%s: no such endpoint", req->path);
}

/* The broker's one rule for changes: a caller that reached the API may change the fleet (the
 * UNIX socket's mode and group decide who can connect; on TCP the bearer token, when the broker
 * has one). whoami answers before that check so the page can tell a wrong token from none. */
void api_whoami(struct broker *b, const struct api_request *req, struct api_reply *reply) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "via", json_object_new_string(req->local ? "unix" : "tcp"));
        json_object_object_add(o, "uid",
                               req->local && req->uid >= 0 ? json_object_new_int64(req->uid) : NULL);
        json_object_object_add(o, "token_required", json_object_new_boolean(!req->local && b->token));
        json_object_object_add(o, "authenticated", json_object_new_boolean(req->authorized));
        json_object_object_add(o, "can_read", json_object_new_boolean(req->authorized));
        json_object_object_add(o, "can_write", json_object_new_boolean(req->authorized));
        reply_json(reply, 200, o);
}
