/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iommu.c — the IOMMU groups that hold GPUs, with every member's class and driver.
 *
 * VFIO hands a whole group to a VM or to nobody: a GPU is assignable only when every other
 * member is a bridge, a function of the same card, or bound to vfio-pci/pci-stub. The doctor's
 * iommu.group_viable check needs the members; inventory shows them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "host-internal.h"

static int read_member(int groupdevs_fd, const char *bdf, const struct vgpu_host *host, struct vgpu_group_member *m) {
        *m = (struct vgpu_group_member) {};
        if (strlen(bdf) >= sizeof(m->bdf))
                return 0;       /* not a PCI address: nothing we could name */
        memcpy(m->bdf, bdf, strlen(bdf) + 1);

        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, bdf);
        if (g) {
                m->class_code = g->class_code;
                return g->driver && !(m->driver = strdup(g->driver)) ? -ENOMEM : 0;
        }
        _cleanup_close_ int dfd = openat(groupdevs_fd, bdf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return 0;
        uint64_t c;
        if (sysfs_read_u64_at(dfd, "class", 16, &c) == 0)
                m->class_code = (uint32_t) c;
        char buf[256];
        if (sysfs_link_basename_at(dfd, "driver", buf, sizeof(buf)) >= 0 && !(m->driver = strdup(buf)))
                return -ENOMEM;
        return 0;
}

static int cmp_member(const void *a, const void *b) {
        return strcmp(((const struct vgpu_group_member *) a)->bdf, ((const struct vgpu_group_member *) b)->bdf);
}

static int read_group(struct vgpu_host *host, int id, struct vgpu_iommu_group *grp, struct vgpu_error *err) {
        char path[128];
        snprintf(path, sizeof(path), SYS_IOMMU_GROUPS "/%d/devices", id);
        *grp = (struct vgpu_iommu_group) { .id = id };

        int fd = root_open_dir(path);
        if (fd < 0)
                return vgpu_error_set_errno(err, fd, "%s%s", root_prefix(), path);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -ENOMEM;
        }
        size_t allocated = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (!GREEDY_REALLOC(grp->members, allocated, grp->n_members + 1)) {
                        r = -ENOMEM;
                        break;
                }
                if ((r = read_member(dirfd(d), de->d_name, host, &grp->members[grp->n_members++])) < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return vgpu_error_set(err, r, "out of memory");
        qsort(grp->members, grp->n_members, sizeof(*grp->members), cmp_member);
        return 0;
}

int iommu_scan_groups(struct vgpu_host *host, struct vgpu_error *err) {
        size_t allocated = 0;
        for (size_t i = 0; i < host->n_gpus; i++) {
                int id = host->gpus[i].iommu_group;
                if (id < 0 || vgpu_host_find_group(host, id))
                        continue;
                if (!GREEDY_REALLOC(host->groups, allocated, host->n_groups + 1))
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                int r = read_group(host, id, &host->groups[host->n_groups], err);
                host->n_groups++;
                if (r < 0)
                        return r;
        }
        return 0;
}
