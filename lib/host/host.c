/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * host.c — building and freeing the host snapshot (struct vgpu_host), and lookups on it.
 * The reading itself is done by one file per source: pci.c, mdev.c, iommu.c, pci-names.c,
 * nvml.c; this file only runs them in order (mdev needs the GPUs, groups need them too).
 */
#include <ctype.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "host-internal.h"

_public_ const char *vgpu_version(void) {
        return PROJECT_VERSION;
}

static void gpu_done(struct vgpu_gpu *g) {
        free(g->vendor_name);
        free(g->device_name);
        free(g->driver);
        free(g->problem);
        free(g->vfs);
        free(g->bars);
        if (g->nvml) {
                free(g->nvml->name);
                free(g->nvml->uuid);
                free(g->nvml->vgpus);
                free(g->nvml->encoder_sessions);
                free(g->nvml->frame_capture_sessions);
                free(g->nvml->driver_version);
                free(g->nvml);
        }
}

_public_ void vgpu_host_free(struct vgpu_host *host) {
        if (!host)
                return;
        struct host *h = host_of(host);
        for (size_t i = 0; i < host->n_gpus; i++)
                gpu_done(&host->gpus[i]);
        free(host->gpus);
        /* the types' strings are the arena's */
        arena_done(&h->type_strings);
        free(h->types_read);
        mdev_bus_listing_free(h->mdev_bus);
        for (size_t i = 0; i < host->n_parents; i++) {
                struct vgpu_parent *p = &host->parents[i];
                free(p->types);
                free(p->name);
                free(p->driver);
        }
        free(host->parents);
        for (size_t i = 0; i < host->n_instances; i++) {
                free(host->instances[i].parent);
                free(host->instances[i].type);
        }
        free(host->instances);
        for (size_t i = 0; i < host->n_groups; i++) {
                for (size_t j = 0; j < host->groups[i].n_members; j++)
                        free(host->groups[i].members[j].driver);
                free(host->groups[i].members);
        }
        free(host->groups);
        free(host->kernel_release);
        free(host->nvml_driver_version);
        free(h);
}

void mdev_bus_listing_free(struct mdev_bus_listing *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                free(l->names[i]);
        free(l->names);
        free(l->inos);
        free(l);
}

struct vgpu_host *host_new(void) {
        struct host *h = calloc(1, sizeof(*h));
        return h ? &h->pub : NULL;
}

_public_ int vgpu_host_scan(unsigned flags, struct vgpu_host **ret, struct vgpu_error *err) {
        _cleanup_(vgpu_host_freep) struct vgpu_host *host = host_new();
        if (!host)
                return vgpu_error_set(err, -ENOMEM, "out of memory");

        char buf[256];
        if (root_read("/proc/sys/kernel/osrelease", buf, sizeof(buf)) > 0 &&
            !(host->kernel_release = strdup(buf)))
                return vgpu_error_set(err, -ENOMEM, "out of memory");

        /* The mdev bus's instances side by side with the PCI functions (mdev-instances.c),
         * joined before the types, whose threads grow the descriptor table again. */
        struct mdev_instance_scan instances;
        if (flags & VGPU_SCAN_INSTANCES)
                mdev_instances_start(&instances, flags & VGPU_SCAN_GROUPS);
        int r = pci_scan(host, flags, err);
        if (flags & VGPU_SCAN_INSTANCES) {
                int q = mdev_instances_finish(host, &instances, r >= 0, err);
                if (r >= 0)
                        r = q;
        }
        if (r >= 0 && (flags & VGPU_SCAN_NAMES))
                r = pci_fill_names(host, err);
        if (r >= 0 && (flags & (VGPU_SCAN_TYPES | VGPU_SCAN_PARENTS)))
                r = mdev_scan_parents(host, flags & VGPU_SCAN_TYPES, err);
        if (r >= 0 && (flags & VGPU_SCAN_NVML))
                r = nvml_scan(host, err);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(host);
        return 0;
}

static int cmp_bdf_key(const void *key, const void *elem) {
        return strcmp(key, ((const struct vgpu_gpu *) elem)->bdf);
}

_public_ const struct vgpu_gpu *vgpu_host_find_gpu(const struct vgpu_host *host, const char *bdf) {
        if (!host || !bdf)
                return NULL;
        return bsearch_safe(bdf, host->gpus, host->n_gpus, sizeof(*host->gpus), cmp_bdf_key);
}

_public_ const struct vgpu_parent *vgpu_host_find_parent(const struct vgpu_host *host, const char *name) {
        if (!host || !name)
                return NULL;
        /* Parents are sorted once the scan ends; during it (few calls) a linear walk is fine. */
        for (size_t i = 0; i < host->n_parents; i++)
                if (streq(host->parents[i].name, name))
                        return &host->parents[i];
        return NULL;
}

static int cmp_group_key(const void *key, const void *elem) {
        int a = *(const int *) key, b = ((const struct vgpu_iommu_group *) elem)->id;
        return (a > b) - (a < b);
}

_public_ const struct vgpu_iommu_group *vgpu_host_find_group(const struct vgpu_host *host, int id) {
        if (!host || id < 0)
                return NULL;
        return bsearch_safe(&id, host->groups, host->n_groups, sizeof(*host->groups), cmp_group_key);
}

/* Parse up to max_digits hex digits at *p, at least one; advances *p. */
static bool parse_hex(const char **p, int max_digits, unsigned *ret) {
        unsigned v = 0;
        int n = 0;
        while (n < max_digits && isxdigit((unsigned char) **p)) {
                char c = (char) tolower((unsigned char) **p);
                v = v * 16 + (unsigned) (c <= '9' ? c - '0' : c - 'a' + 10);
                (*p)++;
                n++;
        }
        *ret = v;
        return n > 0;
}

/* Strict: [DDDD:]BB:DD.F, hex, nothing else (sscanf's %x would take "0x" prefixes and signs). */
_public_ int vgpu_bdf_normalize(const char *in, char ret[VGPU_BDF_MAX]) {
        unsigned v[3], dom = 0, bus, dev, fn;
        size_t n = 0;
        if (!in)
                return -EINVAL;
        const char *p = in;
        /* two or three ':'-separated fields, then ".F" */
        for (;;) {
                if (n == ELEMENTSOF(v) || !parse_hex(&p, 4, &v[n]))
                        return -EINVAL;
                n++;
                if (*p == ':') {
                        p++;
                        continue;
                }
                if (*p != '.' || n < 2)
                        return -EINVAL;
                p++;
                if (!parse_hex(&p, 1, &fn) || *p != '\0')
                        return -EINVAL;
                break;
        }
        if (n == 3)
                dom = v[0], bus = v[1], dev = v[2];
        else
                bus = v[0], dev = v[1];
        if (dom > 0xffff || bus > 0xff || dev > 0x1f || fn > 7)
                return -EINVAL;
        snprintf(ret, VGPU_BDF_MAX, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
        return 0;
}
