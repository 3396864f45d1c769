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

#include "vgpu/assign.h"

/*
 * The entry points used, typed from libvirt's and libxml2's own headers (only the headers are
 * a build dependency). Filled once per process by virt_dl_load(); never unloaded.
 */
struct virt_dl {
        __typeof__(virConnectOpen) *connect_open;
        __typeof__(virConnectOpenReadOnly) *connect_open_read_only;
        __typeof__(virConnectClose) *connect_close;
        __typeof__(virConnectGetType) *connect_get_type;
        __typeof__(virConnectListAllDomains) *list_all_domains;
        __typeof__(virDomainLookupByName) *domain_lookup_by_name;
        __typeof__(virDomainGetName) *domain_get_name;
        __typeof__(virDomainIsActive) *domain_is_active;
        __typeof__(virDomainIsPersistent) *domain_is_persistent;
        __typeof__(virDomainGetXMLDesc) *domain_get_xml_desc;
        __typeof__(virDomainAttachDeviceFlags) *domain_attach_device_flags;
        __typeof__(virDomainDetachDeviceFlags) *domain_detach_device_flags;
        __typeof__(virDomainDefineXML) *domain_define_xml;
        __typeof__(virDomainFree) *domain_free;
        __typeof__(virGetLastErrorMessage) *get_last_error_message;
        __typeof__(virGetLastErrorCode) *get_last_error_code;
        __typeof__(virResetLastError) *reset_last_error;

        __typeof__(xmlReadMemory) *xml_read_memory;
        __typeof__(xmlFreeDoc) *xml_free_doc;
        __typeof__(xmlDocGetRootElement) *xml_doc_get_root_element;
        __typeof__(xmlDocCopyNode) *xml_doc_copy_node;
        __typeof__(xmlNewChild) *xml_new_child;
        __typeof__(xmlAddChild) *xml_add_child;
        __typeof__(xmlUnlinkNode) *xml_unlink_node;
        __typeof__(xmlFreeNode) *xml_free_node;
        __typeof__(xmlBufferCreate) *xml_buffer_create;
        __typeof__(xmlBufferFree) *xml_buffer_free;
        __typeof__(xmlBufferContent) *xml_buffer_content;
        __typeof__(xmlNodeDump) *xml_node_dump;
        __typeof__(xmlSetGenericErrorFunc) *set_generic_error_func;
};

/* A connection: the loaded libraries and libvirt's handle. */
struct vgpu_virt {
        const struct virt_dl *dl;
        virConnectPtr conn;
};

/* Load both libraries (once per process; thread-safe), and silence libxml2's printing in
 * the calling thread. NULL with *err filled when absent. */
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
