/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * assign.c — connecting to libvirt and attaching vGPUs to domains or detaching them,
 * idempotently (see vgpu/assign.h).
 *
 * Before changing anything the domain's XML is read where the change is asked (running state,
 * configuration), so a repeated request changes nothing and says so. A driver that cannot
 * attach devices itself (libvirt's test driver, some others) gets the configuration change as
 * `virsh edit` would make it: the definition read, the element added or removed, redefined.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assign-internal.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"

/* Where a libvirt daemon listens (monolithic libvirtd, modular virtqemud, or the proxy). */
static const char *const sockets[] = {
        "/run/libvirt/libvirt-sock",      "/run/libvirt/libvirt-sock-ro", "/run/libvirt/virtqemud-sock",
        "/run/libvirt/virtqemud-sock-ro", "/run/libvirt/virtproxyd-sock", "/run/libvirt/virtproxyd-sock-ro",
};

static bool daemon_socket_present(void) {
        for (size_t i = 0; i < ELEMENTSOF(sockets); i++)
                if (root_access(sockets[i], F_OK) == 0)
                        return true;
        return false;
}

_public_ int vgpu_virt_open(const char *uri, unsigned flags, struct vgpu_virt **ret, struct vgpu_error *err) {
        const char *env = getenv("LIBVIRT_DEFAULT_URI");
        bool probe = flags & VGPU_VIRT_PROBE;
        if (probe && !uri && (!env || !*env)) {
                /* Without a daemon, connecting costs a failed attempt (or, for an unprivileged
                 * user, starting a session daemon): only talk to one that is there. */
                if (!daemon_socket_present()) {
                        *ret = NULL;
                        return 0;
                }
                /* libvirt's default for an unprivileged user is qemu:///session, not the
                 * system daemon whose socket was found */
                if (geteuid() != 0)
                        uri = "qemu:///system";
        }

        struct vgpu_error load_err;
        const struct virt_dl *dl = virt_dl_load(probe ? &load_err : err);
        if (!dl) {
                if (!probe)
                        return err ? err->code : -ENOPKG;
                *ret = NULL;
                return 0;
        }

        struct vgpu_virt *v = calloc(1, sizeof(*v));
        if (!v)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        v->dl = dl;
        v->conn = flags & VGPU_VIRT_READ_ONLY ? dl->virConnectOpenReadOnly(uri) : dl->virConnectOpen(uri);
        if (!v->conn) {
                int r = vgpu_error_set(err, -ECONNREFUSED, "connecting to libvirt (%s) failed: %s",
                                       uri           ? uri
                                       : env && *env ? env
                                                     : "its default URI",
                                       virt_dl_last_error(dl));
                free(v);
                return r;
        }
        *ret = v;
        return 0;
}

_public_ void vgpu_virt_free(struct vgpu_virt *v) {
        if (!v)
                return;
        v->dl->virConnectClose(v->conn);
        free(v);
}

static const char *where(unsigned flags) {
        switch (flags & (VGPU_ASSIGN_LIVE | VGPU_ASSIGN_CONFIG)) {
        case VGPU_ASSIGN_LIVE:
                return "the running domain";
        case VGPU_ASSIGN_CONFIG:
                return "its configuration";
        default:
                return "its configuration and the running domain";
        }
}

static const char *dev_name(const struct vgpu_hostdev *dev) {
        return dev->kind == VGPU_HOSTDEV_MDEV ? dev->uuid : dev->bdf;
}

static int lookup_domain(struct vgpu_virt *v, const char *name, virDomainPtr *ret, struct vgpu_error *err) {
        virDomainPtr dom = v->dl->virDomainLookupByName(v->conn, name);
        if (!dom) {
                if (v->dl->virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
                        return vgpu_error_set(err, -ENOENT,
                                              "no domain named '%s' in libvirt (see 'virsh list --all')",
                                              name);
                return vgpu_error_set(err, -EIO, "looking up domain '%s' in libvirt: %s", name,
                                      virt_dl_last_error(v->dl));
        }
        *ret = dom;
        return 0;
}

/* Which of the asked places hold dev: LIVE/CONFIG bits. Fills *want when none was asked. */
static int where_held(struct vgpu_virt *v, virDomainPtr dom, const char *name, const struct vgpu_hostdev *dev,
                      unsigned *want, unsigned *ret_held, struct vgpu_error *err) {
        const struct virt_dl *dl = v->dl;
        int active = dl->virDomainIsActive(dom), persistent = dl->virDomainIsPersistent(dom);
        if (active < 0 || persistent < 0)
                return vgpu_error_set(err, -EIO, "reading the state of domain '%s': %s", name,
                                      virt_dl_last_error(dl));
        if (!*want)
                *want = (persistent ? VGPU_ASSIGN_CONFIG : 0) | (active ? VGPU_ASSIGN_LIVE : 0);
        if ((*want & VGPU_ASSIGN_LIVE) && !active)
                return vgpu_error_set(
                        err, -EINVAL,
                        "domain '%s' is not running: --live needs a running domain (use --config)", name);
        if ((*want & VGPU_ASSIGN_CONFIG) && !persistent)
                return vgpu_error_set(
                        err, -EINVAL,
                        "domain '%s' is transient: it has no configuration to change (use --live)", name);

        unsigned held = 0;
        static const struct {
                unsigned bit, xml_flags;
        } places[] = {
                { VGPU_ASSIGN_LIVE, 0 },
                { VGPU_ASSIGN_CONFIG, VIR_DOMAIN_XML_INACTIVE },
        };
        for (size_t i = 0; i < ELEMENTSOF(places); i++) {
                if (!(*want & places[i].bit))
                        continue;
                char *xml = dl->virDomainGetXMLDesc(dom, places[i].xml_flags);
                if (!xml)
                        return vgpu_error_set(err, -EIO, "reading the XML of domain '%s': %s", name,
                                              virt_dl_last_error(dl));
                int r = domain_xml_holds(dl, xml, dev);
                free(xml);
                if (r < 0)
                        return vgpu_error_set(err, r, "the XML libvirt gave for domain '%s' does not parse",
                                              name);
                if (r > 0)
                        held |= places[i].bit;
        }
        *ret_held = held;
        return 0;
}

/* The configuration change as `virsh edit` makes it, for drivers without device attach. */
static int redefine(struct vgpu_virt *v, virDomainPtr dom, const char *name, const struct vgpu_hostdev *dev,
                    const char *hostdev_xml, bool add, struct vgpu_error *err) {
        const struct virt_dl *dl = v->dl;
        _cleanup_free_ char *xml =
                dl->virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
        if (!xml)
                return vgpu_error_set(err, -EIO, "reading the configuration of domain '%s': %s", name,
                                      virt_dl_last_error(dl));
        _cleanup_free_ char *edited = NULL;
        int r = add ? domain_xml_add(dl, xml, hostdev_xml, &edited)
                    : domain_xml_remove(dl, xml, dev, &edited);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "editing the configuration of domain '%s'", name);
        virDomainPtr d = dl->virDomainDefineXML(v->conn, edited);
        if (!d)
                return vgpu_error_set(err, -EIO, "redefining domain '%s' %s %s: %s", name,
                                      add ? "with" : "without", dev_name(dev), virt_dl_last_error(dl));
        dl->virDomainFree(d);
        return 0;
}

/* Our LIVE/CONFIG bits as libvirt's VIR_DOMAIN_AFFECT_* flags. */
static unsigned affect(unsigned flags) {
        return (flags & VGPU_ASSIGN_LIVE ? VIR_DOMAIN_AFFECT_LIVE : 0) |
               (flags & VGPU_ASSIGN_CONFIG ? VIR_DOMAIN_AFFECT_CONFIG : 0);
}

static int change(struct vgpu_virt *v, const char *name, const struct vgpu_hostdev *dev, unsigned flags,
                  bool attach, unsigned *ret_changed, struct vgpu_error *err) {
        const struct virt_dl *dl = v->dl;
        virDomainPtr dom = NULL;
        int r = lookup_domain(v, name, &dom, err);
        if (r < 0)
                return r;

        unsigned want = flags & (VGPU_ASSIGN_LIVE | VGPU_ASSIGN_CONFIG), held = 0, need;
        _cleanup_free_ char *xml = NULL;
        if ((r = where_held(v, dom, name, dev, &want, &held, err)) < 0)
                goto out;
        need = attach ? want & ~held : want & held;
        if (!need) {
                if (attach)
                        r = 0;
                else
                        r = vgpu_error_set(err, -ENOENT, "%s is not attached to domain '%s' (not in %s)",
                                           dev_name(dev), name, where(want));
                goto out;
        }
        if ((r = vgpu_hostdev_xml(dev, flags, &xml, err)) < 0)
                goto out;

        dl->virResetLastError();
        r = attach ? dl->virDomainAttachDeviceFlags(dom, xml, affect(need))
                   : dl->virDomainDetachDeviceFlags(dom, xml, affect(need));
        if (r < 0 && need == VGPU_ASSIGN_CONFIG && dl->virGetLastErrorCode() == VIR_ERR_NO_SUPPORT)
                r = redefine(v, dom, name, dev, xml, attach, err);
        else if (r < 0)
                r = vgpu_error_set(err, -EIO, "%s %s %s domain '%s' (%s): %s",
                                   attach ? "attaching" : "detaching", dev_name(dev), attach ? "to" : "from",
                                   name, where(need), virt_dl_last_error(dl));
        if (r < 0)
                goto out;
        if (ret_changed)
                *ret_changed = need;
        r = 1;
out:
        dl->virDomainFree(dom);
        if (r == 0 && ret_changed)
                *ret_changed = 0;
        return r;
}

_public_ int vgpu_assign(struct vgpu_virt *v, const char *domain, const struct vgpu_hostdev *dev,
                         unsigned flags, unsigned *ret_changed, struct vgpu_error *err) {
        return change(v, domain, dev, flags, true, ret_changed, err);
}

_public_ int vgpu_detach(struct vgpu_virt *v, const char *domain, const struct vgpu_hostdev *dev,
                         unsigned flags, unsigned *ret_changed, struct vgpu_error *err) {
        return change(v, domain, dev, flags, false, ret_changed, err);
}
