/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * domain-xml.c — reading and editing a libvirt domain's XML with libxml2: which <hostdev>
 * elements it has and what they point at, and the document with one added or removed.
 *
 * A device is matched by what it is, not by how it is spelled: mdev UUIDs case-insensitively,
 * PCI addresses by their numbers (libvirt accepts bus='65' as well as bus='0x41').
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assign-internal.h"
#include "basic/macro.h"

/* Parse without network access and without libxml2 printing anything: the library never prints. */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

int hostdev_pci_address(const char *bdf, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot,
                        unsigned *ret_function) {
        unsigned d, b, s, f;
        char end;
        if (sscanf(bdf, "%x:%x:%x.%x%c", &d, &b, &s, &f, &end) != 4)
                return -EINVAL;
        *ret_domain = d, *ret_bus = b, *ret_slot = s, *ret_function = f;
        return 0;
}

int domain_xml_parse(const struct virt_dl *dl, const char *xml, xmlDoc **ret) {
        size_t n = strlen(xml);
        if (n > INT32_MAX)
                return -E2BIG;
        xmlDoc *doc = dl->xmlReadMemory(xml, (int) n, "domain.xml", NULL, PARSE_OPTIONS);
        if (!doc)
                return -EBADMSG;
        if (!dl->xmlDocGetRootElement(doc)) {
                dl->xmlFreeDoc(doc);
                return -EBADMSG;
        }
        *ret = doc;
        return 0;
}

static bool is_element(const xmlNode *n, const char *name) {
        return n && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

static xmlNode *child(const xmlNode *n, const char *name) {
        for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
                if (is_element(c, name))
                        return c;
        return NULL;
}

/* An attribute's value without allocating (xmlGetProp's result would need xmlFree, a variable
 * of libxml2 rather than a function). NULL when absent. */
static const char *attr(const xmlNode *n, const char *name) {
        for (const xmlAttr *a = n->properties; a; a = a->next)
                if (strcmp((const char *) a->name, name) == 0)
                        return a->children && a->children->type == XML_TEXT_NODE
                                       ? (const char *) a->children->content
                                       : "";
        return NULL;
}

static bool attr_number(const xmlNode *n, const char *name, unsigned max, unsigned *ret) {
        const char *s = attr(n, name);
        char *end;
        if (!s || !*s)
                return false;
        errno = 0;
        unsigned long v = strtoul(s, &end, 0);
        if (errno || *end || v > max)
                return false;
        *ret = (unsigned) v;
        return true;
}

int domain_xml_hostdev_key(xmlNode *hostdev, char *key, size_t size) {
        const char *mode = attr(hostdev, "mode"), *type = attr(hostdev, "type");
        xmlNode *address = child(child(hostdev, "source"), "address");
        if ((mode && strcmp(mode, "subsystem") != 0) || !type || !address)
                return -ENOENT;
        if (strcmp(type, "mdev") == 0) {
                const char *uuid = attr(address, "uuid");
                if (!uuid || strlen(uuid) != VGPU_UUID_MAX - 1)
                        return -ENOENT;
                snprintf(key, size, "%s", uuid);
                for (char *p = key; *p; p++)
                        if (*p >= 'A' && *p <= 'F')
                                *p = (char) (*p - 'A' + 'a');
                return 0;
        }
        unsigned d = 0, b, s, f;
        if (strcmp(type, "pci") == 0 &&
            (attr_number(address, "domain", 0xffff, &d) || !attr(address, "domain")) &&
            attr_number(address, "bus", 0xff, &b) && attr_number(address, "slot", 0x1f, &s) &&
            attr_number(address, "function", 7, &f)) {
                snprintf(key, size, "%04x:%02x:%02x.%x", d, b, s, f);
                return 0;
        }
        return -ENOENT;
}

static const char *dev_key(const struct vgpu_hostdev *dev) {
        return dev->kind == VGPU_HOSTDEV_MDEV ? dev->uuid : dev->bdf;
}

/* <devices> of the document's <domain>, NULL when it has none. */
static xmlNode *devices_of(xmlDoc *doc) {
        xmlNode *root = doc->children;
        while (root && root->type != XML_ELEMENT_NODE)
                root = root->next;
        return is_element(root, "domain") ? child(root, "devices") : NULL;
}

xmlNode *domain_xml_find(xmlDoc *doc, const struct vgpu_hostdev *dev) {
        xmlNode *devices = devices_of(doc);
        for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next) {
                char key[VGPU_UUID_MAX];
                if (is_element(c, "hostdev") && domain_xml_hostdev_key(c, key, sizeof(key)) == 0 &&
                    strcasecmp(key, dev_key(dev)) == 0)
                        return c;
        }
        return NULL;
}

int domain_xml_keys(const struct virt_dl *dl, const char *xml, void (*fn)(const char *key, void *userdata),
                    void *userdata) {
        xmlDoc *doc;
        int r = domain_xml_parse(dl, xml, &doc);
        if (r < 0)
                return r;
        xmlNode *devices = devices_of(doc);
        for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next) {
                char key[VGPU_UUID_MAX];
                if (is_element(c, "hostdev") && domain_xml_hostdev_key(c, key, sizeof(key)) == 0)
                        fn(key, userdata);
        }
        dl->xmlFreeDoc(doc);
        return 0;
}

int domain_xml_holds(const struct virt_dl *dl, const char *xml, const struct vgpu_hostdev *dev) {
        xmlDoc *doc;
        int r = domain_xml_parse(dl, xml, &doc);
        if (r < 0)
                return r;
        r = domain_xml_find(doc, dev) != NULL;
        dl->xmlFreeDoc(doc);
        return r;
}

/* The document as text, for virDomainDefineXML. */
static int dump(const struct virt_dl *dl, xmlDoc *doc, char **ret) {
        xmlBuffer *buf = dl->xmlBufferCreate();
        if (!buf)
                return -ENOMEM;
        int r = 0;
        if (dl->xmlNodeDump(buf, doc, dl->xmlDocGetRootElement(doc), 0, 0) < 0)
                r = -ENOMEM;
        else if (!(*ret = strdup((const char *) dl->xmlBufferContent(buf))))
                r = -ENOMEM;
        dl->xmlBufferFree(buf);
        return r;
}

int domain_xml_add(const struct virt_dl *dl, const char *xml, const char *hostdev_xml, char **ret) {
        xmlDoc *doc, *frag;
        int r = domain_xml_parse(dl, xml, &doc);
        if (r < 0)
                return r;
        if ((r = domain_xml_parse(dl, hostdev_xml, &frag)) < 0) {
                dl->xmlFreeDoc(doc);
                return r;
        }
        xmlNode *root = dl->xmlDocGetRootElement(doc);
        xmlNode *devices = child(root, "devices");
        if (!devices)
                devices = dl->xmlNewChild(root, NULL, (const xmlChar *) "devices", NULL);
        xmlNode *copy = devices ? dl->xmlDocCopyNode(dl->xmlDocGetRootElement(frag), doc, 1) : NULL;
        if (!copy)
                r = -ENOMEM;
        else if (!dl->xmlAddChild(devices, copy)) {
                dl->xmlFreeNode(copy);
                r = -ENOMEM;
        } else
                r = dump(dl, doc, ret);
        dl->xmlFreeDoc(frag);
        dl->xmlFreeDoc(doc);
        return r;
}

int domain_xml_remove(const struct virt_dl *dl, const char *xml, const struct vgpu_hostdev *dev, char **ret) {
        xmlDoc *doc;
        int r = domain_xml_parse(dl, xml, &doc);
        if (r < 0)
                return r;
        xmlNode *n = domain_xml_find(doc, dev);
        if (!n)
                r = -ENOENT;
        else {
                /* every element for it: a hand-edited definition may name it twice */
                do {
                        dl->xmlUnlinkNode(n);
                        dl->xmlFreeNode(n);
                } while ((n = domain_xml_find(doc, dev)));
                r = dump(dl, doc, ret);
        }
        dl->xmlFreeDoc(doc);
        return r;
}
