/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet-orphans.c — before the sweep removes an instance no claim names any more, take it out
 * of every libvirt domain that holds it. The claim that named its domain is gone (that is what
 * makes it an orphan), and an admin may have given it to another domain by hand, so every
 * domain's configuration and running state are searched. A domain left naming a removed mdev
 * does not start again; so when libvirt cannot be asked, or a domain still holds the device
 * after the detach, the instance is kept for the next sweep.
 */
#include <errno.h>
#include <stdlib.h>

#include "fleet.h"
#include "log.h"
#include "vgpu/assign.h"

int fleet_orphan_detach(const char *name, struct vgpu_error *err) {
        struct vgpu_hostdev dev;
        int r = vgpu_hostdev_parse(name, &dev, err);
        if (r < 0)
                return r;
        /* as the claims' own detach connects (libvirt's default URI, LIBVIRT_DEFAULT_URI), but
         * only where a libvirt is to be asked: without one on this host no domain holds it */
        _cleanup_(vgpu_virt_freep) struct vgpu_virt *v = NULL;
        if ((r = vgpu_virt_open(NULL, VGPU_VIRT_PROBE, &v, err)) < 0)
                return r;
        if (!v)
                return 0;
        char **domains = NULL;
        size_t n = 0;
        if ((r = vgpu_hostdev_domains(v, &dev, &domains, &n, err)) < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                /* its configuration, and the running domain if it runs (vgpuctl detach's default) */
                r = vgpu_detach(v, domains[i], &dev, 0, NULL, err);
                if (r == -ENOENT) /* let go of it meanwhile */
                        r = 0;
                else if (r >= 0)
                        log_info("fleet: sweep: vGPU %s detached from libvirt domain '%s'", name, domains[i]);
        }
        vgpu_instance_domains_free(domains, n);
        if (r < 0)
                return r;
        /* a running guest may not have let go yet (libvirt does not always wait for it) */
        if ((r = vgpu_hostdev_domains(v, &dev, &domains, &n, err)) < 0)
                return r;
        if (n > 0)
                r = vgpu_error_set(err, -EBUSY, "libvirt domain '%s' still holds it after the detach",
                                   domains[0]);
        vgpu_instance_domains_free(domains, n);
        return r;
}
