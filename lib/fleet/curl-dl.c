/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * curl-dl.c — libcurl for the etcd client, loaded with dlopen() on first use.
 *
 * libvgpu.so is linked by every vgpuctl command; linked in, libcurl and its 30-odd libraries
 * would cost each of them about 4 ms at start (src/vgpuctl/daemon-client.c measured it), though
 * only vgpud in a fleet and the broker talk to etcd. Never unloaded: libcurl keeps global state.
 */
#include <dlfcn.h>
#include <pthread.h>

#include "etcd-internal.h"

static struct curl_dl dl;
static char dl_error[256];
static bool dl_loaded;
static pthread_once_t dl_once = PTHREAD_ONCE_INIT;

static void load(void) {
        /* libcurl4 (OpenSSL), else libcurl3-gnutls: both do HTTP/1.1, TLS and client certificates */
        void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!lib)
                lib = dlopen("libcurl-gnutls.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                snprintf(dl_error, sizeof(dl_error),
                         "libcurl is not installed (%s; Debian: apt install libcurl4)", dlerror());
                return;
        }
        struct {
                const char *name;
                void **fn;
        } syms[] = {
                { "curl_global_init", (void **) &dl.global_init },
                { "curl_easy_init", (void **) &dl.easy_init },
                { "curl_easy_setopt", (void **) &dl.easy_setopt },
                { "curl_easy_perform", (void **) &dl.easy_perform },
                { "curl_easy_getinfo", (void **) &dl.easy_getinfo },
                { "curl_easy_cleanup", (void **) &dl.easy_cleanup },
                { "curl_easy_strerror", (void **) &dl.easy_strerror },
                { "curl_slist_append", (void **) &dl.slist_append },
                { "curl_slist_free_all", (void **) &dl.slist_free_all },
                { "curl_multi_init", (void **) &dl.multi_init },
                { "curl_multi_add_handle", (void **) &dl.multi_add_handle },
                { "curl_multi_remove_handle", (void **) &dl.multi_remove_handle },
                { "curl_multi_perform", (void **) &dl.multi_perform },
                { "curl_multi_poll", (void **) &dl.multi_poll },
                { "curl_multi_info_read", (void **) &dl.multi_info_read },
                { "curl_multi_cleanup", (void **) &dl.multi_cleanup },
        };
        for (size_t i = 0; i < ELEMENTSOF(syms); i++)
                if (!(*syms[i].fn = dlsym(lib, syms[i].name))) {
                        snprintf(dl_error, sizeof(dl_error), "libcurl has no %s (older than 7.66?)",
                                 syms[i].name);
                        return;
                }
        /* once, before any thread makes a handle: curl_global_init is not thread-safe everywhere */
        if (dl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(dl_error, sizeof(dl_error), "curl_global_init failed");
                return;
        }
        dl_loaded = true;
}

const struct curl_dl *etcd_curl(struct vgpu_error *err) {
        pthread_once(&dl_once, load);
        if (!dl_loaded) {
                vgpu_error_set(err, -ENOPKG, "etcd client: %s", dl_error);
                return NULL;
        }
        return &dl;
}
