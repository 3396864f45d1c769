/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * virt-dl.c — libvirt and libxml2, loaded with dlopen() the first time a command needs them.
 *
 * Linking libvirt.so.0 would make every vgpuctl command load its 55 libraries (about 11 ms,
 * more than a no-op `apply` takes) and would tie libvgpu to hosts where libvirt is installed;
 * libxml2 alone costs 1.5 ms. Loaded here, they cost only the commands that talk to libvirt,
 * and libxml2 comes for free once libvirt (which depends on it) is in. Neither is unloaded:
 * libvirt keeps global state, and sanitizers need the code to symbolise stacks at exit.
 */
#include <errno.h>
#include <pthread.h>

#include "assign-internal.h"
#include "basic/error-util.h"

static struct virt_dl dl;
#define VIRT_SYMBOL(fn) DLOPEN_SYMBOL(dl, fn)
static const struct dlopen_symbol libvirt_symbols[] = { LIBVIRT_FUNCS(VIRT_SYMBOL) };
static const struct dlopen_symbol libxml2_symbols[] = { LIBXML2_FUNCS(VIRT_SYMBOL) };
struct dlopen_library assign_libvirt_library = DLOPEN_LIBRARY("libvirt.so.0", "libvirt0", libvirt_symbols);
struct dlopen_library assign_libxml2_library = DLOPEN_LIBRARY("libxml2.so.2", "libxml2", libxml2_symbols);

/* libvirt prints every error on stderr unless a handler is set; the library never prints.
 * The message stays available through virGetLastErrorMessage(). */
static void quiet(void *userdata, virErrorPtr error) {
        (void) userdata;
        (void) error;
}

/* The same for libxml2's own messages (see virt_dl_load). */
static void quiet_xml(void *userdata, const char *format, ...) {
        (void) userdata;
        (void) format;
}

/* libvirt's handler is process-wide: set once, not raced by threads that connect at once */
static void quiet_libvirt(void) {
        dl.virSetErrorFunc(NULL, quiet);
}

const struct virt_dl *virt_dl_load(struct vgpu_error *err) {
        struct vgpu_error load_err = {};
        /* libxml2 comes with libvirt (which depends on it): its dlopen() only finds it loaded */
        if (dlopen_library_load(&assign_libvirt_library, &load_err) < 0 ||
            dlopen_library_load(&assign_libxml2_library, &load_err) < 0) {
                vgpu_error_set(err, -ENOPKG, "%s", load_err.message);
                return NULL;
        }
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, quiet_libvirt);
        /* libxml2 prints I/O errors (libvirt reading a test:/// file, say) unless told not to,
         * and its handler is per thread */
        dl.xmlSetGenericErrorFunc(NULL, quiet_xml);
        return &dl;
}

const char *virt_dl_last_error(const struct virt_dl *d) {
        const char *m = d->virGetLastErrorMessage();
        return m ? m : "unknown libvirt error";
}
