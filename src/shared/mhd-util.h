/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mhd-util.h — what vgpud's and vgpu-broker's libmicrohttpd front ends share: collecting a
 * request's body across MHD's calls, freeing it when the request ends, MHD's log lines, the
 * response every answer starts from, and who is calling.
 *
 * A program fills a struct mhd_handler per listener and gives it to MHD_start_daemon() as the
 * cls of mhd_on_request, mhd_on_completed and mhd_log; its hooks decide the rest (vgpud: the
 * caller's access and per-request deadlines; the broker: its token and peer credentials).
 */
#pragma once

#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* What one request gathers between MHD's calls. A program's per-request state begins with it. */
struct mhd_request {
        char *body; /* NUL-terminated; NULL until a byte came */
        size_t size;
        size_t max;     /* the body limit: a larger body sets too_large and is dropped */
        bool too_large; /* answer 413 */
};

struct mhd_handler {
        void *userdata;      /* the hooks' first argument */
        size_t request_size; /* of the program's per-request state (0: struct mhd_request alone) */
        size_t body_max;     /* each request's max, unless begin changes it */
        /* Optional. The headers are in: settle what they tell (begin may set r->max, and answer
         * at once by queueing a response). MHD_YES goes on to read the body. */
        enum MHD_Result (*begin)(void *userdata, struct MHD_Connection *c, struct mhd_request *r,
                                 const char *method, const char *url);
        /* The whole body is in (or r->too_large): answer. */
        enum MHD_Result (*answer)(void *userdata, struct MHD_Connection *c, struct mhd_request *r,
                                  const char *method, const char *url);
        /* Optional. The request is done and its state about to be freed; a kept-alive
         * connection now waits for the next one. */
        void (*completed)(void *userdata, struct MHD_Connection *c);
        /* libmicrohttpd's messages, one line each (the programs log them at debug level) */
        void (*log)(const char *line);
};

/* MHD's MHD_AccessHandlerCallback, MHD_OPTION_NOTIFY_COMPLETED and MHD_OPTION_EXTERNAL_LOGGER,
 * each with cls = the struct mhd_handler. */
enum MHD_Result mhd_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls);
void mhd_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode code);
void mhd_log(void *cls, const char *fmt, va_list ap);

/* A response owning body (freed with it, or here when none can be made: then NULL), with its
 * Content-Type (application/json when NULL) and Cache-Control: no-store: answers are never to be
 * cached. */
struct MHD_Response *mhd_response_new(char *body, size_t size, const char *content_type);

/* The TCP client's address as text, "?" when unknown. */
void mhd_client_address(struct MHD_Connection *c, char *buf, size_t size);
/* The UNIX socket peer's credentials (SO_PEERCRED), or -errno. */
int mhd_peer_credentials(struct MHD_Connection *c, struct ucred *ret);
