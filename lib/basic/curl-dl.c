/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* curl-dl.c — libcurl's function table, loaded once (curl-dl.h says why with dlopen()). */
#include <pthread.h>
#include <stdio.h>

#include "curl-dl.h"
#include "dlopen-util.h"

static struct curl_dl dl;

#define SYM(f) \
        { "curl_" #f, (void **) &dl.f }
static const struct dlopen_symbol curl_symbols[] = {
        SYM(global_init),    SYM(easy_init),    SYM(easy_setopt),      SYM(easy_perform),
        SYM(easy_getinfo),   SYM(easy_cleanup), SYM(easy_strerror),    SYM(slist_append),
        SYM(slist_free_all), SYM(multi_init),   SYM(multi_add_handle), SYM(multi_remove_handle),
        SYM(multi_perform),  SYM(multi_poll),   SYM(multi_info_read),  SYM(multi_cleanup),
        SYM(version_info),
};
#undef SYM

/* libcurl4 (OpenSSL), else libcurl3-gnutls: both do HTTP/1.1, UNIX sockets, TLS and client
 * certificates, and fill the same table */
static struct dlopen_library curl_openssl = DLOPEN_LIBRARY("libcurl.so.4", "libcurl4", curl_symbols);
static struct dlopen_library curl_gnutls =
        DLOPEN_LIBRARY("libcurl-gnutls.so.4", "libcurl3-gnutls", curl_symbols);

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct vgpu_error load_error; /* code 0: loaded */

static void load(void) {
        /* the first's message when neither loads: libcurl4 is the one to install */
        if (dlopen_library_load(&curl_openssl, &load_error) < 0 &&
            dlopen_library_load(&curl_gnutls, NULL) < 0)
                return;
        load_error = (struct vgpu_error){};
        /* once, before any thread makes a handle: curl_global_init is not thread-safe everywhere */
        if (dl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                vgpu_error_set(&load_error, -EIO, "curl_global_init failed");
}

const struct curl_dl *curl_load(char *ret_error, size_t size) {
        pthread_once(&load_once, load);
        if (load_error.code < 0) {
                snprintf(ret_error, size, "%s", load_error.message);
                return NULL;
        }
        return &dl;
}
