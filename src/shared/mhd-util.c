/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mhd-util.c — the libmicrohttpd glue vgpud and vgpu-broker share (see mhd-util.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mhd-util.h"

/* Append what MHD passed; past r->max the body is dropped and the request marked too large. */
static int append_body(struct mhd_request *r, const char *upload, size_t n) {
        if (r->too_large)
                return 0;
        if (r->size + n > r->max) {
                r->too_large = true;
                free(r->body);
                r->body = NULL;
                return 0;
        }
        char *b = realloc(r->body, r->size + n + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + r->size, upload, n);
        r->size += n;
        b[r->size] = '\0';
        r->body = b;
        return 0;
}

enum MHD_Result mhd_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        const struct mhd_handler *h = cls;
        struct mhd_request *r = *con_cls;
        (void) version;
        if (!r) {
                /* the first call: the headers only */
                size_t size = h->request_size ? h->request_size : sizeof(*r);
                if (!(r = calloc(1, size)))
                        return MHD_NO;
                r->max = h->body_max;
                *con_cls = r;
                return h->begin ? h->begin(h->userdata, c, r, method, url) : MHD_YES;
        }
        if (*upload_size > 0) {
                if (append_body(r, upload, *upload_size) < 0)
                        return MHD_NO;
                *upload_size = 0;
                return MHD_YES;
        }
        return h->answer(h->userdata, c, r, method, url);
}

void mhd_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode code) {
        const struct mhd_handler *h = cls;
        struct mhd_request *r = *con_cls;
        (void) code;
        if (h->completed)
                h->completed(h->userdata, c);
        if (r) {
                free(r->body);
                free(r);
                *con_cls = NULL;
        }
}

void mhd_log(void *cls, const char *fmt, va_list ap) {
        const struct mhd_handler *h = cls;
        char msg[512];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        h->log(msg);
}

struct MHD_Response *mhd_response_new(char *body, size_t size, const char *content_type) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return NULL;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type ? content_type : "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        return resp;
}

void mhd_client_address(struct MHD_Connection *c, char *buf, size_t size) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        snprintf(buf, size, "?");
        if (sa && sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, buf, size);
        else if (sa && sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, buf, size);
}

int mhd_peer_credentials(struct MHD_Connection *c, struct ucred *ret) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        socklen_t len = sizeof(*ret);
        if (!ci)
                return -EBADF;
        return getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, ret, &len) < 0 ? -errno : 0;
}
