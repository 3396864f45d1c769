/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iommu.c — the IOMMU groups that hold GPUs, with every member's class and driver.
 *
 * VFIO hands a whole group to a VM or to nobody: a GPU is assignable only when every other
 * member is a bridge, a function of the same card, or bound to vfio-pci/pci-stub. Groups are
 * built from the iommu_group link of every PCI function the scan already read, rather than by
 * listing /sys/kernel/iommu_groups/N/devices per group: on an SR-IOV host each VF has its own
 * group and that would cost a directory listing per VF. (On x86 every group member is a PCI
 * function; platform devices in groups exist only on other architectures.)
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "host-internal.h"

static int cmp_int(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;
        return (x > y) - (x < y);
}

static int cmp_member(const void *a, const void *b) {
        return strcmp(((const struct vgpu_group_member *) a)->bdf,
                      ((const struct vgpu_group_member *) b)->bdf);
}

static const struct vgpu_iommu_group *find_sorted(const struct vgpu_host *host, int id) {
        return bsearch_safe(&id, host->groups, host->n_groups, sizeof(*host->groups), cmp_int);
}

int iommu_build_groups(struct vgpu_host *host, const struct pci_function *funcs, size_t n_funcs,
                       struct vgpu_error *err) {
        /* the distinct groups of the GPUs, sorted, so members can be placed by binary search */
        _cleanup_free_ int *ids = calloc(host->n_gpus + 1, sizeof(int));
        if (!ids)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        size_t n = 0;
        for (size_t i = 0; i < host->n_gpus; i++)
                if (host->gpus[i].iommu_group >= 0)
                        ids[n++] = host->gpus[i].iommu_group;
        qsort_safe(ids, n, sizeof(int), cmp_int);

        host->groups = calloc(n + 1, sizeof(*host->groups));
        if (!host->groups)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
                if (host->n_groups == 0 || host->groups[host->n_groups - 1].id != ids[i])
                        host->groups[host->n_groups++].id = ids[i];

        /* struct vgpu_iommu_group starts with its id: the bsearch key compares ints */
        _Static_assert(offsetof(struct vgpu_iommu_group, id) == 0, "id first");
        _cleanup_free_ size_t *allocated = calloc(host->n_groups + 1, sizeof(size_t));
        if (!allocated)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_funcs; i++) {
                const struct pci_function *f = &funcs[i];
                struct vgpu_iommu_group *grp =
                        f->iommu_group >= 0 ? (struct vgpu_iommu_group *) find_sorted(host, f->iommu_group)
                                            : NULL;
                if (!grp)
                        continue;
                size_t k = (size_t) (grp - host->groups);
                if (!GREEDY_REALLOC(grp->members, allocated[k], grp->n_members + 1))
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                struct vgpu_group_member *m = &grp->members[grp->n_members++];
                *m = (struct vgpu_group_member){ .class_code = f->class_code };
                memcpy(m->bdf, f->bdf, sizeof(m->bdf));
                if (f->driver && !(m->driver = strdup(f->driver)))
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < host->n_groups; i++)
                qsort_safe(host->groups[i].members, host->groups[i].n_members,
                           sizeof(struct vgpu_group_member), cmp_member);
        return 0;
}
