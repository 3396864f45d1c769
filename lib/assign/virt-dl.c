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
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "assign-internal.h"
#include "basic/error-util.h"

static struct virt_dl dl;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

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

static bool resolve(void *lib, const char *libname, const char *name, void **ret) {
        *ret = dlsym(lib, name);
        if (!*ret) {
                snprintf(load_error, sizeof(load_error), "%s has no %s (too old?)", libname, name);
                return false;
        }
        return true;
}

static void load(void) {
        void *virt = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!virt) {
                snprintf(load_error, sizeof(load_error),
                         "libvirt is not installed on this host (%s; Debian: apt install libvirt0)",
                         dlerror());
                return;
        }
        void *xml = dlopen("libxml2.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!xml) {
                snprintf(load_error, sizeof(load_error), "libxml2 is not installed on this host (%s)",
                         dlerror());
                return;
        }
        struct virt_dl d = {};
        __typeof__(virSetErrorFunc) *set_error_func;
        __typeof__(xmlSetGenericErrorFunc) *set_generic_error_func;
#define V(field, name) resolve(virt, "libvirt.so.0", name, (void **) &d.field)
#define X(field, name) resolve(xml, "libxml2.so.2", name, (void **) &d.field)
        bool ok = V(connect_open, "virConnectOpen") && V(connect_open_read_only, "virConnectOpenReadOnly") &&
                  V(connect_close, "virConnectClose") && V(connect_get_type, "virConnectGetType") &&
                  V(list_all_domains, "virConnectListAllDomains") &&
                  V(domain_lookup_by_name, "virDomainLookupByName") &&
                  V(domain_get_name, "virDomainGetName") && V(domain_is_active, "virDomainIsActive") &&
                  V(domain_is_persistent, "virDomainIsPersistent") &&
                  V(domain_get_xml_desc, "virDomainGetXMLDesc") &&
                  V(domain_attach_device_flags, "virDomainAttachDeviceFlags") &&
                  V(domain_detach_device_flags, "virDomainDetachDeviceFlags") &&
                  V(domain_define_xml, "virDomainDefineXML") && V(domain_free, "virDomainFree") &&
                  V(get_last_error_message, "virGetLastErrorMessage") &&
                  V(get_last_error_code, "virGetLastErrorCode") && V(reset_last_error, "virResetLastError") &&
                  resolve(virt, "libvirt.so.0", "virSetErrorFunc", (void **) &set_error_func) &&
                  X(xml_read_memory, "xmlReadMemory") && X(xml_free_doc, "xmlFreeDoc") &&
                  X(xml_doc_get_root_element, "xmlDocGetRootElement") &&
                  X(xml_doc_copy_node, "xmlDocCopyNode") && X(xml_new_child, "xmlNewChild") &&
                  X(xml_add_child, "xmlAddChild") && X(xml_unlink_node, "xmlUnlinkNode") &&
                  X(xml_free_node, "xmlFreeNode") && X(xml_buffer_create, "xmlBufferCreate") &&
                  X(xml_buffer_free, "xmlBufferFree") && X(xml_buffer_content, "xmlBufferContent") &&
                  X(xml_node_dump, "xmlNodeDump") &&
                  resolve(xml, "libxml2.so.2", "xmlSetGenericErrorFunc", (void **) &set_generic_error_func);
#undef V
#undef X
        if (!ok)
                return;
        set_error_func(NULL, quiet);
        d.set_generic_error_func = set_generic_error_func;
        dl = d;
}

const struct virt_dl *virt_dl_load(struct vgpu_error *err) {
        pthread_once(&once, load);
        if (!dl.connect_open) {
                vgpu_error_set(err, -ENOPKG, "%s", load_error);
                return NULL;
        }
        /* libxml2 prints I/O errors (libvirt reading a test:/// file, say) unless told not to,
         * and its handler is per thread */
        dl.set_generic_error_func(NULL, quiet_xml);
        return &dl;
}

const char *virt_dl_last_error(const struct virt_dl *d) {
        const char *m = d->get_last_error_message();
        return m ? m : "unknown libvirt error";
}
