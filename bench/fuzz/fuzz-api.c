/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-api.c — libFuzzer harness for what vgpud does with a request after HTTP parsing: the
 * routing, access and query rules, the JSON body of POST /v1/instances, the instance id of
 * DELETE, the host.yaml of POST /v1/apply, every GET. Input: one byte picking the method, one
 * the caller's access and listener, then "PATH[?QUERY]\n" and the body. The host is an empty
 * directory (VGPU_ROOT), so a change that gets through the checks finds nothing to change.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"

static struct vgpud ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc, (void) argv;
        static char root[] = "/tmp/vgpud-fuzz.XXXXXX";
        if (!mkdtemp(root))
                abort();
        setenv("VGPU_ROOT", root, 1);
        log_setup(LOG_CRIT); /* events and denials would flood the output */
        if (vgpud_config_default(&ctx.config) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const methods[] = { "GET", "POST", "DELETE", "PUT", "PATCH", "HEAD" };
        static const unsigned listeners[] = { LISTENER_LOCAL, LISTENER_TCP_API, LISTENER_METRICS };
        if (size < 2 || size > 64 * 1024)
                return 0;
        struct api_request req = {
                .d = &ctx,
                .method = methods[data[0] % 6],
                .access = (enum vgpud_access)(data[1] % 3),
                .listener = listeners[(data[1] / 3) % 3],
                .caller = "fuzzer",
        };
        char *buf = malloc(size - 1);
        if (!buf)
                return 0;
        memcpy(buf, data + 2, size - 2);
        buf[size - 2] = '\0';
        char *nl = memchr(buf, '\n', size - 2);
        char *body = nl ? nl + 1 : buf + size - 2;
        if (nl)
                *nl = '\0';
        req.body = body;
        req.body_size = (size_t) (buf + size - 2 - body);
        api_request_set_target(&req, buf); /* the query as MHD hands it over */
        struct api_reply reply;
        api_dispatch(&req, &reply);
        if (reply.status < 200 || reply.status > 599 || !reply.body)
                abort();
        api_reply_done(&reply);
        free(buf);
        return 0;
}
