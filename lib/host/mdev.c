/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev.c — mediated-device parents, their types and the instances that exist, from the kernel's
 * mdev ABI (Documentation/driver-api/vfio-mediated-device.rst):
 *     /sys/class/mdev_bus/PARENT/mdev_supported_types/TYPE/{name,description,device_api,
 *                                                            available_instances,create,devices/}
 *     /sys/bus/mdev/devices/UUID -> .../PARENT/UUID  (mdev_type, iommu_group, remove)
 * plus NVIDIA vendor-VFIO VFs, which offer types outside that ABI (backend nvidia.c).
 *
 * Types are read by mdev-types.c; this file finds the parents, picks for each device model the
 * parent whose types' static attributes are read (the others copy them), and reads instances.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/parallel.h"
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

static int add_instance(struct vgpu_host *host, size_t *allocated, struct vgpu_instance **ret) {
        if (!GREEDY_REALLOC(host->instances, *allocated, host->n_instances + 1))
                return -ENOMEM;
        struct vgpu_instance *in = &host->instances[host->n_instances++];
        *in = (struct vgpu_instance){ .iommu_group = -1 };
        *ret = in;
        return 0;
}

/*
 * The directories the instances' parents sit in, each opened once (O_PATH) for the instances'
 * links to be read relative to it: "VF/UUID/mdev_type" instead of
 * "../../../devices/pci0000:00/0000:00:03.0/VF/UUID/mdev_type" from /sys/bus/mdev/devices,
 * whose every component is a dentry lookup and a permission check, once per instance (twice
 * with its group). The parents of a host are the VFs of a few PFs, or a few PFs: a handful of
 * directories for hundreds of instances. Shared by the threads of the round.
 */
struct parent_dirs {
        pthread_mutex_t lock;
        struct parent_dir {
                char *path; /* relative to /sys/bus/mdev/devices, as the UUID link says */
                int fd;     /* -1: could not be opened, the links are read through the path */
        } * dirs;
        size_t n, allocated;
};

/* The descriptor of path (below devsfd), opened on first use; -1 when it cannot be. */
static int parent_dir_fd(struct parent_dirs *pd, int devsfd, const char *path) {
        int fd = -1;
        pthread_mutex_lock(&pd->lock);
        size_t i;
        for (i = 0; i < pd->n; i++)
                if (streq(pd->dirs[i].path, path)) {
                        fd = pd->dirs[i].fd;
                        break;
                }
        if (i == pd->n && GREEDY_REALLOC(pd->dirs, pd->allocated, pd->n + 1)) {
                char *copy = strdup(path);
                fd = copy ? openat(devsfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
                if (copy)
                        pd->dirs[pd->n++] = (struct parent_dir){ copy, fd < 0 ? -1 : fd };
        }
        pthread_mutex_unlock(&pd->lock);
        return fd < 0 ? -1 : fd;
}

static void parent_dirs_done(struct parent_dirs *pd) {
        for (size_t i = 0; i < pd->n; i++) {
                free(pd->dirs[i].path);
                if (pd->dirs[i].fd >= 0)
                        close(pd->dirs[i].fd);
        }
        free(pd->dirs);
        pthread_mutex_destroy(&pd->lock);
}

/* Read one instance's links; parent NULL afterwards means it vanished (removed meanwhile). The
 * IOMMU group only with_group: the planner asks for it alone, for what it would remove
 * (host_instance_iommu_group()), so a no-op apply resolves no group link of its 512 vGPUs. */
static int read_instance(int devsfd, struct parent_dirs *pd, struct vgpu_instance *in, bool with_group) {
        char target[4096], buf[320];
        /* DIR/PARENT/UUID: the parent is the component before the last */
        int n = sysfs_readlink_at(devsfd, in->uuid, target, sizeof(target) - sizeof("/iommu_group"));
        if (n < 0)
                return 0;
        char *slash = strrchr(target, '/');
        if (!slash)
                return 0;
        *slash = '\0';
        char *parent_slash = strrchr(target, '/');
        const char *parent = parent_slash ? parent_slash + 1 : target;
        if (!(in->parent = strdup(parent)))
                return -ENOMEM;
        *slash = '/';
        /* the links beside it through the target just read, not through the UUID link again:
         * kernfs composes a link's target anew at every walk through it; and from the
         * parent's directory when it could be opened */
        int dfd = devsfd;
        const char *rel = target;
        if (target[0] == '/') /* sysfs links are relative; anything else would leave VGPU_ROOT */
                n = snprintf(target, sizeof(target), "%s", in->uuid);
        else if (parent_slash) {
                *parent_slash = '\0';
                int fd = parent_dir_fd(pd, devsfd, target);
                *parent_slash = '/';
                if (fd >= 0) {
                        dfd = fd;
                        rel = parent_slash + 1;
                }
        }
        memcpy(target + n, "/mdev_type", sizeof("/mdev_type"));
        if (sysfs_link_basename_at(dfd, rel, buf, sizeof(buf)) >= 0 && !(in->type = strdup(buf)))
                return -ENOMEM;
        if (!with_group)
                return 0;
        memcpy(target + n, "/iommu_group", sizeof("/iommu_group"));
        if (sysfs_link_basename_at(dfd, rel, buf, sizeof(buf)) >= 0)
                in->iommu_group = atoi(buf);
        return 0;
}

struct instance_round {
        int devsfd;
        struct parent_dirs dirs;
        struct vgpu_instance *instances;
        bool with_groups;
};

static int read_instance_job(size_t i, void *userdata) {
        struct instance_round *round = userdata;
        return read_instance(round->devsfd, &round->dirs, &round->instances[i], round->with_groups);
}

static int scan_mdev_devices(struct vgpu_host *host, size_t *allocated, bool with_groups,
                             struct vgpu_error *err) {
        int fd = root_open_dir(SYS_MDEV_DEVICES);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return vgpu_error_set_errno(err, fd, "%s%s", root_prefix(), SYS_MDEV_DEVICES);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        int r = 0;
        struct dirent *de;
        size_t first = host->n_instances;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || strlen(de->d_name) != VGPU_UUID_MAX - 1)
                        continue;
                struct vgpu_instance *in;
                if ((r = add_instance(host, allocated, &in)) < 0)
                        break;
                memcpy(in->uuid, de->d_name, VGPU_UUID_MAX);
                in->kind = VGPU_TYPE_MDEV;
        }
        struct instance_round round = { .devsfd = dirfd(d),
                                        .dirs.lock = PTHREAD_MUTEX_INITIALIZER,
                                        .instances = host->instances + first,
                                        .with_groups = with_groups };
        if (r >= 0)
                r = parallel_for(host->n_instances - first, 128, read_instance_job, &round);
        parent_dirs_done(&round.dirs);
        closedir(d);
        /* drop the ones removed while we looked */
        size_t kept = first;
        for (size_t i = first; i < host->n_instances; i++) {
                if (host->instances[i].parent)
                        host->instances[kept++] = host->instances[i];
                else
                        free(host->instances[i].type);
        }
        host->n_instances = kept;
        if (r == -ENOMEM)
                vgpu_error_set(err, r, "out of memory");
        return r;
}

/* Vendor-VFIO VFs with nvidia/current_vgpu_type set are instances without a UUID. */
static int scan_vfio_instances(struct vgpu_host *host, size_t *allocated) {
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (!g->nvidia_vfio)
                        continue;
                char path[128], buf[64];
                snprintf(path, sizeof(path), SYS_PCI_DEVICES "/%s", g->bdf);
                _cleanup_close_ int devfd = root_open_dir(path);
                if (devfd < 0 || sysfs_read_at(devfd, "nvidia/current_vgpu_type", buf, sizeof(buf)) <= 0 ||
                    streq(buf, "0"))
                        continue;
                struct vgpu_instance *in;
                if (add_instance(host, allocated, &in) < 0)
                        return -ENOMEM;
                in->kind = VGPU_TYPE_NVIDIA_VFIO;
                in->iommu_group = g->iommu_group;
                if (!(in->parent = strdup(g->bdf)) || !(in->type = strdup(buf)))
                        return -ENOMEM;
        }
        return 0;
}

static int cmp_instance(const void *a, const void *b) {
        const struct vgpu_instance *x = a, *y = b;
        int c = strcmp(x->parent, y->parent);
        return c ? c : strcmp(x->uuid, y->uuid);
}

int mdev_scan_instances(struct vgpu_host *host, bool with_groups, struct vgpu_error *err) {
        size_t allocated = 0;
        int r = scan_mdev_devices(host, &allocated, with_groups, err);
        if (r < 0)
                return r;
        if ((r = scan_vfio_instances(host, &allocated)) < 0)
                return vgpu_error_set(err, r, "out of memory");
        qsort_safe(host->instances, host->n_instances, sizeof(*host->instances), cmp_instance);
        return 0;
}

int host_instance_iommu_group(const struct vgpu_instance *in) {
        if (in->iommu_group >= 0)
                return in->iommu_group;
        /* an mdev's own link; a vendor-VFIO VF's group is its function's */
        char path[128], full[4096], buf[64];
        if (in->kind == VGPU_TYPE_NVIDIA_VFIO)
                snprintf(path, sizeof(path), SYS_PCI_DEVICES "/%s/iommu_group", strempty(in->parent));
        else
                snprintf(path, sizeof(path), SYS_MDEV_DEVICES "/%s/iommu_group", in->uuid);
        if (root_path(full, sizeof(full), path) < 0 ||
            sysfs_link_basename_at(AT_FDCWD, full, buf, sizeof(buf)) < 0)
                return -1;
        return atoi(buf);
}
