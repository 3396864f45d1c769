/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev.c — mediated-device parents, their types and the instances that exist, from the kernel's
 * mdev ABI (Documentation/driver-api/vfio-mediated-device.rst):
 *     /sys/class/mdev_bus/PARENT/mdev_supported_types/TYPE/{name,description,device_api,
 *                                                            available_instances,create,devices/}
 * plus NVIDIA vendor-VFIO VFs, which offer types outside that ABI (backend nvidia.c).
 *
 * Types are read by mdev-types.c, instances by mdev-instances.c; this file finds the parents and
 * picks for each device model the parent whose types' static attributes are read (the others
 * copy them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "host-internal.h"

/* A parent whose static type attributes are read, keyed by its device model. */
struct model_memo {
        char key[96];
        size_t parent; /* index into host->parents */
};

static void model_key(const struct vgpu_parent *p, char *buf, size_t size) {
        const struct vgpu_gpu *g = p->gpu;
        if (!g || !p->driver) {
                buf[0] = '\0'; /* virtual parents are one of a kind: never shared */
                return;
        }
        snprintf(buf, size, "%s|%04x:%04x:%04x:%04x", p->driver, g->vendor_id, g->device_id,
                 g->subsystem_vendor_id, g->subsystem_device_id);
}

/*
 * A parent named name whose device directory is dirfd's entry `dir` ("." when dirfd is it), of
 * this generation: which registration of the parent this is. The kernel makes a parent's files
 * anew when a driver registers it again (module reload, rebind, VFs re-enabled), and kernfs never
 * hands a recent inode number out again, so a parent that vanished and came back between two
 * scans differs by an inode number: mdev_register_parent() links the device into
 * /sys/class/mdev_bus each time (class_compat_create_link), and the listing of that directory
 * gives the link's inode without a call per parent; a vendor-VFIO VF, on no bus of its own,
 * has its nvidia/ directory stat'ed.
 */
static int add_parent(struct vgpu_host *host, size_t *allocated, const char *name, int dirfd, const char *dir,
                      uint64_t generation, struct vgpu_parent **ret) {
        if (!GREEDY_REALLOC(host->parents, *allocated, host->n_parents + 1))
                return -ENOMEM;
        struct vgpu_parent *p = &host->parents[host->n_parents++];
        *p = (struct vgpu_parent){ .name = strdup(name), .generation = generation };
        if (!p->name)
                return -ENOMEM;
        p->gpu = vgpu_host_find_gpu(host, name);
        char path[320];
        /* The PCI scan already knows a GPU's driver; only virtual parents need a readlink. */
        if (p->gpu) {
                if (p->gpu->driver && !(p->driver = strdup(p->gpu->driver)))
                        return -ENOMEM;
        } else {
                char buf[256];
                snprintf(path, sizeof(path), "%s/driver", dir);
                if (sysfs_link_basename_at(dirfd, path, buf, sizeof(buf)) >= 0 && !(p->driver = strdup(buf)))
                        return -ENOMEM;
        }
        *ret = p;
        return 0;
}

static int scan_mdev_bus(struct vgpu_host *host, size_t *allocated, bool with_types, struct vgpu_error *err) {
        _cleanup_(mdev_bus_listing_freep) struct mdev_bus_listing *listed = TAKE_PTR(host_of(host)->mdev_bus);
        int fd = root_open_dir(SYS_MDEV_BUS);
        if (fd == -ENOENT)
                return 0; /* no mdev driver loaded */
        if (fd < 0)
                return vgpu_error_set_errno(err, fd, "%s%s", root_prefix(), SYS_MDEV_BUS);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }

        int r = 0;
        size_t first = host->n_parents;
        struct vgpu_parent *added;
        /* attributes relative to the bus directory ("NAME/driver"): no open per parent; the
         * names from the PCI scan's listing of the directory when it kept one */
        if (listed)
                for (size_t i = 0; i < listed->n; i++) {
                        if ((r = add_parent(host, allocated, listed->names[i], dirfd(d), listed->names[i],
                                            listed->inos[i], &added)) < 0)
                                break;
                }
        else
                for (struct dirent *de; (de = readdir(d));) {
                        if (de->d_name[0] == '.')
                                continue;
                        if ((r = add_parent(host, allocated, de->d_name, dirfd(d), de->d_name, de->d_ino,
                                            &added)) < 0)
                                break;
                }

        if (!with_types) {
                closedir(d);
                return r;
        }
        /* Parents are in place (no more reallocation): plan the two rounds. */
        size_t n = host->n_parents - first;
        _cleanup_free_ struct model_memo *memo = NULL;
        _cleanup_free_ struct mdev_type_job *jobs = r >= 0 ? calloc(n + 1, sizeof(*jobs)) : NULL;
        size_t n_memo = 0, memo_allocated = 0, n_first = 0, n_second = 0;
        if (r >= 0 && !jobs)
                r = -ENOMEM;
        for (size_t i = first; r >= 0 && i < host->n_parents; i++) {
                struct vgpu_parent *p = &host->parents[i];
                char key[96];
                const struct vgpu_parent *ref = NULL;
                model_key(p, key, sizeof(key));
                for (size_t k = 0; key[0] && k < n_memo; k++)
                        if (streq(memo[k].key, key))
                                ref = &host->parents[memo[k].parent];
                if (ref) {
                        jobs[n - 1 - n_second++] = (struct mdev_type_job){ p, ref };
                        continue;
                }
                jobs[n_first++] = (struct mdev_type_job){ p, NULL };
                if (key[0]) {
                        if (!GREEDY_REALLOC(memo, memo_allocated, n_memo + 1)) {
                                r = -ENOMEM;
                                break;
                        }
                        snprintf(memo[n_memo].key, sizeof(memo[n_memo].key), "%s", key);
                        memo[n_memo++].parent = i;
                }
        }
        /* the reference parents first: the others copy their types' static attributes */
        struct arena *strings = &host_of(host)->type_strings;
        if (r >= 0)
                r = mdev_types_read(dirfd(d), jobs, n_first, strings, err);
        if (r >= 0)
                r = mdev_types_read(dirfd(d), jobs + n_first, n_second, strings, err);
        if (r == -ENOMEM)
                vgpu_error_set(err, r, "out of memory");
        closedir(d);
        return r;
}

/* The vendor-VFIO types the backend listed (strings of their own) into the host's arena, which
 * owns every type's strings; on failure too, so that nothing is lost: -ENOMEM when a copy
 * failed (that string is NULL). */
static int adopt_type_strings(struct vgpu_host *host, struct vgpu_parent *p) {
        struct arena *strings = &host_of(host)->type_strings;
        int r = 0;
        for (size_t i = 0; i < p->n_types; i++) {
                struct vgpu_type *t = &p->types[i];
                char **fields[] = { &t->id, &t->name, &t->description, &t->device_api };
                for (size_t j = 0; j < ELEMENTSOF(fields); j++) {
                        _cleanup_free_ char *own = *fields[j];
                        if (own && !(*fields[j] = arena_strdup(strings, own)))
                                r = -ENOMEM;
                }
        }
        return r;
}

/* One vendor-VFIO VF's types (nvidia/creatable_vgpu_types), relative to its directory. */
static int read_vfio_types(struct vgpu_host *host, int devfd, struct vgpu_parent *p) {
        int r = backend_nvidia.list_vfio_types(devfd, p);
        int k = adopt_type_strings(host, p);
        return r < 0 ? r : k;
}

/* NVIDIA vendor-VFIO VFs: parents outside the mdev bus. */
static int scan_vfio_parents(struct vgpu_host *host, size_t *allocated, bool with_types,
                             struct vgpu_error *err) {
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (!g->nvidia_vfio)
                        continue;
                char path[128];
                snprintf(path, sizeof(path), SYS_PCI_DEVICES "/%s", g->bdf);
                _cleanup_close_ int devfd = root_open_dir(path);
                if (devfd < 0)
                        continue;
                struct vgpu_parent *p;
                struct stat st;
                int r = add_parent(host, allocated, g->bdf, devfd, ".",
                                   fstatat(devfd, "nvidia", &st, 0) == 0 ? (uint64_t) st.st_ino : 0, &p);
                if (r < 0)
                        return r;
                if (!with_types)
                        continue;
                r = read_vfio_types(host, devfd, p);
                if (r < 0)
                        return vgpu_error_set_errno(err, r, "%s%s/nvidia/creatable_vgpu_types", root_prefix(),
                                                    path);
        }
        if (with_types)
                nvml_vgpu_type_framebuffers(host->parents, host->n_parents);
        return 0;
}

static int cmp_parent(const void *a, const void *b) {
        /* BDFs are fixed-width lower-case hex: byte order is bus order */
        return strcmp(((const struct vgpu_parent *) a)->name, ((const struct vgpu_parent *) b)->name);
}

int mdev_scan_parents(struct vgpu_host *host, bool with_types, struct vgpu_error *err) {
        size_t allocated = 0;
        int r = scan_mdev_bus(host, &allocated, with_types, err);
        if (r >= 0)
                r = scan_vfio_parents(host, &allocated, with_types, err);
        if (r < 0)
                return r == -ENOMEM ? vgpu_error_set(err, r, "out of memory") : r;

        /* types point at their parent's name, a string that stays put when parents are sorted;
         * mdev parents' types come sorted (mdev_types_read), vendor-VFIO ones are sorted here */
        qsort_safe(host->parents, host->n_parents, sizeof(*host->parents), cmp_parent);
        for (size_t i = 0; i < host->n_parents; i++)
                if (host->parents[i].gpu && host->parents[i].gpu->nvidia_vfio)
                        qsort_safe(host->parents[i].types, host->parents[i].n_types, sizeof(struct vgpu_type),
                                   mdev_type_cmp);
        /* by index in the sorted parents: all read, or none yet */
        struct host *h = host_of(host);
        if (!(h->types_read = calloc(host->n_parents + 1, sizeof(bool))))
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; with_types && i < host->n_parents; i++)
                h->types_read[i] = true;
        return 0;
}

/*
 * One parent's types, when the scan left them out (VGPU_SCAN_PARENTS): the planner asks only
 * for parents it must create on, so a no-op apply on a 12,000-type host reads none.
 */
int host_parent_read_types(const struct vgpu_host *host, struct vgpu_parent *p, struct vgpu_error *err) {
        struct host *h = host_of(host);
        size_t index = (size_t) (p - host->parents);
        if (index >= host->n_parents || !h->types_read)
                return vgpu_error_set(err, -EINVAL, "%s: not a parent of this host", p->name);
        if (h->types_read[index])
                return 0;
        int r;
        if (p->gpu && p->gpu->nvidia_vfio) {
                char path[128];
                snprintf(path, sizeof(path), SYS_PCI_DEVICES "/%s", p->name);
                _cleanup_close_ int devfd = root_open_dir(path);
                r = devfd < 0 ? devfd : read_vfio_types(&h->pub, devfd, p);
                if (r < 0)
                        return vgpu_error_set_errno(err, r, "%s%s/nvidia/creatable_vgpu_types", root_prefix(),
                                                    path);
                nvml_vgpu_type_framebuffers(p, 1);
                qsort_safe(p->types, p->n_types, sizeof(struct vgpu_type), mdev_type_cmp);
        } else {
                _cleanup_close_ int busfd = root_open_dir(SYS_MDEV_BUS);
                if (busfd < 0)
                        return vgpu_error_set_errno(err, busfd, "%s%s", root_prefix(), SYS_MDEV_BUS);
                if ((r = mdev_types_read(busfd, &(struct mdev_type_job){ p, NULL }, 1, &h->type_strings,
                                         err)) < 0)
                        return r;
        }
        h->types_read[index] = true;
        return 0;
}
