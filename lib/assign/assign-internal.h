/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * assign-internal.h — what the assignment files share: libvirt and libxml2 loaded at run
 * time (virt-dl.c), hostdev matching and editing in a domain's XML (domain-xml.c).
 */
#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "basic/dlopen-util.h"
#include "vgpu/assign.h"

/*
 * The entry points used, typed from libvirt's and libxml2's own headers (only the headers are
 * a build dependency). Filled once per process by virt_dl_load() through basic/dlopen-util.h;
 * never unloaded.
 */
#define LIBVIRT_FUNCS(X)              \
        X(virConnectOpen)             \
        X(virConnectOpenReadOnly)     \
        X(virConnectClose)            \
        X(virConnectGetType)          \
        X(virConnectListAllDomains)   \
        X(virDomainLookupByName)      \
        X(virDomainGetName)           \
        X(virDomainIsActive)          \
        X(virDomainIsPersistent)      \
        X(virDomainGetXMLDesc)        \
        X(virDomainAttachDeviceFlags) \
        X(virDomainDetachDeviceFlags) \
        X(virDomainDefineXML)         \
        X(virDomainFree)              \
        X(virGetLastErrorMessage)     \
        X(virGetLastErrorCode)        \
        X(virResetLastError)          \
        X(virSetErrorFunc)

#define LIBXML2_FUNCS(X)        \
        X(xmlReadMemory)        \
        X(xmlFreeDoc)           \
        X(xmlDocGetRootElement) \
        X(xmlDocCopyNode)       \
        X(xmlNewChild)          \
        X(xmlAddChild)          \
        X(xmlUnlinkNode)        \
        X(xmlFreeNode)          \
        X(xmlBufferCreate)      \
        X(xmlBufferFree)        \
        X(xmlBufferContent)     \
        X(xmlNodeDump)          \
        X(xmlSetGenericErrorFunc)

struct virt_dl {
        LIBVIRT_FUNCS(DLOPEN_FIELD)
        LIBXML2_FUNCS(DLOPEN_FIELD)
};

/* The libraries as loaded (tests point .soname at a missing one before the next use). */
extern struct dlopen_library assign_libvirt_library, assign_libxml2_library;

/* A connection: the loaded libraries and libvirt's handle. */
struct vgpu_virt {
        const struct virt_dl *dl;
        virConnectPtr conn;
};

/* Load both libraries (once per process; thread-safe), and silence libxml2's printing in
 * the calling thread. NULL with *err filled (-ENOPKG, naming the library) when absent. */
const struct virt_dl *virt_dl_load(struct vgpu_error *err);
/* libvirt's message for the last failure in this thread, never NULL. */
const char *virt_dl_last_error(const struct virt_dl *dl);

/* Parse a normalised BDF into its numbers. */
int hostdev_pci_address(const char *bdf, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot,
                        unsigned *ret_function);

/* A parsed domain XML (libxml2 document, parsed without network access or printed errors). */
int domain_xml_parse(const struct virt_dl *dl, const char *xml, xmlDoc **ret);
/* The domain's <hostdev> whose source is dev, NULL when it has none. */
xmlNode *domain_xml_find(xmlDoc *doc, const struct vgpu_hostdev *dev);
/* Does the domain hold dev? Parses xml; 1 yes, 0 no, -EBADMSG unparsable. */
int domain_xml_holds(const struct virt_dl *dl, const char *xml, const struct vgpu_hostdev *dev);
/* The whole document with the element hostdev_xml added to <devices> / dev's element removed,
 * for drivers that cannot attach devices themselves. *ret is malloc'd. */
int domain_xml_add(const struct virt_dl *dl, const char *xml, const char *hostdev_xml, char **ret);
int domain_xml_remove(const struct virt_dl *dl, const char *xml, const struct vgpu_hostdev *dev, char **ret);
/* What a <hostdev> element points at: the mdev UUID (lower case) or the normalised BDF.
 * -ENOENT for other hostdevs (USB, SCSI, ...). */
int domain_xml_hostdev_key(xmlNode *hostdev, char *key, size_t size);
/* Call fn with the key of every <hostdev> of the domain. 0, or -EBADMSG when unparsable. */
int domain_xml_keys(const struct virt_dl *dl, const char *xml, void (*fn)(const char *key, void *userdata),
                    void *userdata);
