/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev-instances.c — the vGPU instances that exist: the mdev bus's devices
 *     /sys/bus/mdev/devices/UUID -> .../PARENT/UUID  (mdev_type, iommu_group)
 * and NVIDIA vendor-VFIO VFs with a type set (nvidia/current_vgpu_type), which have no UUID.
 *
 * The mdev bus is listed first; on a host with many instances their links are then read on a
 * thread of their own while pci.c reads the functions (mdev_instances_start/finish): the two
 * read disjoint files, and each alone leaves the second core of a small machine idle for much of
 * its time (threads of a parallel_for start late and share a descriptor table). On
 * bench/inventory.sh's host a `list` spent 1.1-1.6 ms on its 768 instance links after 4-6 ms of
 * PCI functions; side by side, most of that is hidden.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/parallel.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "basic/sysfs-batch.h"
#include "host-internal.h"

static int add_instance(struct mdev_instance_scan *s, struct vgpu_instance **ret) {
        if (!GREEDY_REALLOC(s->instances, s->allocated, s->n + 1))
                return -ENOMEM;
        struct vgpu_instance *in = &s->instances[s->n++];
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

/* The mdev bus's names into s->instances, its directory left open in s->dir (NULL: no bus,
 * or an error in s->r and s->err). */
static void list_mdev_devices(struct mdev_instance_scan *s) {
        int fd = root_open_dir(SYS_MDEV_DEVICES);
        if (fd == -ENOENT)
                return;
        if (fd < 0) {
                s->r = vgpu_error_set_errno(&s->err, fd, "%s%s", root_prefix(), SYS_MDEV_DEVICES);
                return;
        }
        if (!(s->dir = fdopendir(fd))) {
                close(fd);
                s->r = vgpu_error_set(&s->err, -ENOMEM, "out of memory");
                return;
        }
        struct dirent *de;
        while ((de = readdir(s->dir))) {
                if (de->d_name[0] == '.' || strlen(de->d_name) != VGPU_UUID_MAX - 1)
                        continue;
                struct vgpu_instance *in;
                if (add_instance(s, &in) < 0) {
                        s->r = vgpu_error_set(&s->err, -ENOMEM, "out of memory");
                        return;
                }
                memcpy(in->uuid, de->d_name, VGPU_UUID_MAX);
                in->kind = VGPU_TYPE_MDEV;
        }
}

/* The links of the instances listed, s->dir closed; s->r and s->err say how it went. */
static void read_mdev_devices(struct mdev_instance_scan *s) {
        if (!s->dir)
                return;
        struct instance_round round = { .devsfd = dirfd(s->dir),
                                        .dirs.lock = PTHREAD_MUTEX_INITIALIZER,
                                        .instances = s->instances,
                                        .with_groups = s->with_groups };
        int r = s->r >= 0 ? parallel_for(s->n, 128, read_instance_job, &round) : 0;
        parent_dirs_done(&round.dirs);
        closedir(s->dir);
        s->dir = NULL;
        /* drop the ones removed while we looked */
        size_t kept = 0;
        for (size_t i = 0; i < s->n; i++) {
                if (s->instances[i].parent)
                        s->instances[kept++] = s->instances[i];
                else
                        free(s->instances[i].type);
        }
        s->n = kept;
        if (r == -ENOMEM)
                s->r = vgpu_error_set(&s->err, r, "out of memory");
}

static void *read_mdev_devices_thread(void *userdata) {
        read_mdev_devices(userdata);
        return NULL;
}

/* Fewer instances are read by finish on the calling thread: a thread's start and end cost more
 * than the links of a few dozen instances (2-4 us each), as in parallel_for. */
#define INSTANCES_PER_THREAD 64

void mdev_instances_start(struct mdev_instance_scan *s, bool with_groups) {
        *s = (struct mdev_instance_scan){ .with_groups = with_groups };
        list_mdev_devices(s);
        /* without a thread, finish reads them */
        if (!s->dir || s->r < 0 || s->n < INSTANCES_PER_THREAD)
                return;
        /* The descriptor table grown first for what this thread and pci.c's batches beside it
         * open at once: grown while two threads share it, every open waits for an RCU grace
         * period (basic/parallel.h). The types' threads come after the join. */
        fd_table_reserve((parallel_max_threads() + 1) * SYSFS_BATCH_MAX_FDS + 64);
        s->running = pthread_create(&s->thread, NULL, read_mdev_devices_thread, s) == 0;
}

/* Vendor-VFIO VFs with nvidia/current_vgpu_type set are instances without a UUID. */
static int scan_vfio_instances(const struct vgpu_host *host, struct mdev_instance_scan *s) {
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
                if (add_instance(s, &in) < 0)
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

static void instances_free(struct vgpu_instance *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].parent);
                free(v[i].type);
        }
        free(v);
}

int mdev_instances_finish(struct vgpu_host *host, struct mdev_instance_scan *s, bool keep,
                          struct vgpu_error *err) {
        if (s->running)
                pthread_join(s->thread, NULL);
        else
                read_mdev_devices(s);
        s->running = false;
        int r = s->r;
        if (r < 0 && err)
                *err = s->err;
        if (r >= 0 && keep && (r = scan_vfio_instances(host, s)) < 0)
                r = vgpu_error_set(err, r, "out of memory");
        if (r < 0 || !keep) {
                instances_free(s->instances, s->n);
                return r;
        }
        qsort_safe(s->instances, s->n, sizeof(*s->instances), cmp_instance);
        host->instances = s->instances;
        host->n_instances = s->n;
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
