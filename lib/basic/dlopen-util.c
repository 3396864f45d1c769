/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dlopen-util.c — load an optional library once, resolving its table of functions (see the header). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "dlopen-util.h"
#include "error-util.h"

/* One lock for every library: loads are rare (once each), and one lock cannot deadlock with
 * itself the way two libraries loading each other's users could. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static int load(struct dlopen_library *lib) {
        void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
                snprintf(lib->error, sizeof(lib->error), "%s is not installed (Debian: apt install %s; %s)",
                         lib->soname, lib->package, dlerror());
                return -EOPNOTSUPP;
        }
        for (size_t i = 0; i < lib->n_symbols; i++) {
                void *p = dlsym(handle, lib->symbols[i].name);
                if (!p) {
                        snprintf(lib->error, sizeof(lib->error), "%s has no %s (too old?)", lib->soname,
                                 lib->symbols[i].name);
                        /* no half-filled table: a caller sees all of it or none */
                        for (size_t k = 0; k < i; k++)
                                *lib->symbols[k].ptr = NULL;
                        return -EOPNOTSUPP;
                }
                *lib->symbols[i].ptr = p;
        }
        return 0;
}

int dlopen_library_load(struct dlopen_library *lib, struct vgpu_error *err) {
        pthread_mutex_lock(&load_lock);
        if (!lib->tried) {
                lib->result = load(lib);
                lib->tried = true;
        }
        int r = lib->result;
        pthread_mutex_unlock(&load_lock);
        if (r < 0)
                return vgpu_error_set(err, r, "%s", lib->error);
        return 0;
}
