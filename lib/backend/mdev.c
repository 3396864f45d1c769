/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev.c (backend) — the kernel's mdev ABI, and the fallback backend for parents that no vendor
 * backend claims (the kernel's sample drivers and any other mdev driver).
 *
 * The ABI gives no frame buffer size; mbochs says it in prose ("virtual display, 16 MB video
 * memory"), which is the one pattern read here. Creating is writing the UUID to the type's
 * create file, waiting for the device and writing its attributes; vendors whose parents are
 * mdev parents (NVIDIA before vGPU 17, GVT-g) create through the same functions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"

#define APPEAR_TIMEOUT_MS 5000 /* a device normally appears within the write(2); drivers may defer */
#define LATE_WATCH_MS     5000 /* after a timeout, how long the rollback watches for it to come late */

static void mdev_describe_type(struct vgpu_type *t) {
        const char *p = t->description ? strstr(t->description, " MB video memory") : NULL;
        if (!p)
                return;
        /* walk back over the number */
        const char *q = p;
        while (q > t->description && q[-1] >= '0' && q[-1] <= '9')
                q--;
        if (q == p)
                return;
        t->framebuffer_bytes = parse_size_with_unit(q);
}

static int wait_for(const char *path, bool present, int timeout_ms) {
        for (int waited = 0;; waited += 10) {
                if ((root_access(path, F_OK) == 0) == present)
                        return 0;
                if (waited >= timeout_ms)
                        return -ETIMEDOUT;
                nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
}

/*
 * A creation that timed out may still complete: the kernel (or a driver that defers) makes the
 * device after we gave up, and a device nobody asked for would stay. The rollback watches for it
 * a while longer and removes it; one that comes even later is recorded in ABANDONED_DIR and
 * removed by the next change made under the lock (backend_mdev_reap_abandoned).
 */
#define ABANDONED_DIR       "/run/vgpuctl/abandoned"
#define ABANDONED_MAX_AGE_S (24 * 3600)

static void abandon(const char *uuid) {
        char path[128];
        snprintf(path, sizeof(path), ABANDONED_DIR "/%s", uuid);
        (void) write_file_atomic(path, uuid, strlen(uuid), 0644);
}

static void unabandon(const char *uuid) {
        char path[128], full[4096];
        snprintf(path, sizeof(path), ABANDONED_DIR "/%s", uuid);
        if (root_path(full, sizeof(full), path) == 0)
                (void) unlink(full);
}

void backend_mdev_reap_abandoned(void) {
        int fd = root_open_dir(ABANDONED_DIR);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!vgpu_uuid_valid(de->d_name))
                        continue;
                char path[128];
                struct stat st;
                snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", de->d_name);
                bool here = root_access(path, F_OK) == 0;
                if (here ? backend_mdev_remove_device(de->d_name) == 0
                         : fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
                                    time(NULL) - st.st_mtime > ABANDONED_MAX_AGE_S)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
}

int backend_mdev_remove_device(const char *uuid) {
        char path[128];
        snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/remove", uuid);
        int r = sysfs_write(path, "1");
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", uuid);
        return wait_for(path, false, APPEAR_TIMEOUT_MS);
}

/* The names of a spec become paths: none may lead out of its directory. */
int backend_mdev_check_names(const struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
        if (!sysfs_name_ok(spec->parent))
                return vgpu_error_set(err, -EINVAL, "parent '%s': not a device name", spec->parent);
        if (!sysfs_name_ok(spec->type))
                return vgpu_error_set(err, -EINVAL, "type '%s': not a vGPU type name", spec->type);
        for (size_t i = 0; i < spec->n_attrs; i++)
                if (!sysfs_rel_path_ok(spec->attrs[i].key))
                        return vgpu_error_set(err, -EINVAL, "attribute '%s': not a path below the device",
                                              spec->attrs[i].key);
        return 0;
}

int backend_mdev_create(const struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
        char path[512];
        /* the planner's specs come from host.yaml and mdevctl's store, checked when parsed; this is
         * where names turn into writes, so once more */
        int r = backend_mdev_check_names(spec, err);
        if (r < 0)
                return r;
        /* asked for now: an earlier, abandoned creation of the same UUID is not to be reaped */
        unabandon(spec->uuid);
        snprintf(path, sizeof(path), "/sys/class/mdev_bus/%s/mdev_supported_types/%s/create", spec->parent,
                 spec->type);
        r = sysfs_write(path, spec->uuid);
        if (r < 0)
                return vgpu_error_set_errno(
                        err, r, "creating %s (%s on %s): the kernel refused the UUID written to %s%s",
                        spec->uuid, spec->type, spec->parent, root_prefix(), path);
        snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", spec->uuid);
        if ((r = wait_for(path, true, APPEAR_TIMEOUT_MS)) < 0) {
                /* too late to be this creation, but it may still come: watch, remove, record */
                abandon(spec->uuid);
                bool late = wait_for(path, true, LATE_WATCH_MS) == 0;
                bool removed = late && backend_mdev_remove_device(spec->uuid) == 0;
                if (removed)
                        unabandon(spec->uuid);
                return vgpu_error_set(
                        err, r, "creating %s: %s%s did not appear within %d ms%s", spec->uuid, root_prefix(),
                        path, APPEAR_TIMEOUT_MS,
                        removed ? "; it appeared later and was removed again"
                        : late  ? "; it appeared later and could NOT be removed"
                                : "; should it still appear, the next vgpuctl change removes it");
        }
        for (size_t i = 0; i < spec->n_attrs; i++) {
                /* only the device's own files: a key through one of its links (mdev_type/create,
                 * mdev_type/devices/OTHER/remove) would act on other devices, past every check */
                if ((r = sysfs_write_beneath(path, spec->attrs[i].key, spec->attrs[i].value)) < 0) {
                        int q = backend_mdev_remove_device(spec->uuid);
                        const char *why = r == -ELOOP || r == -EINVAL ? ": not a file in the device's own "
                                                                        "directory (links are not followed)"
                                          : r == -ENAMETOOLONG        ? ": the path is too long"
                                          : r == -ENOENT              ? ": the device has no such attribute"
                                                                      : "";
                        /* a key of any length is refused above: the message shows its start */
                        vgpu_error_set_errno(
                                err, r,
                                "creating %s: writing attribute %.128s%s='%.128s' failed%s (device %s)",
                                spec->uuid, spec->attrs[i].key, strlen(spec->attrs[i].key) > 128 ? "..." : "",
                                spec->attrs[i].value, why,
                                q < 0 ? "could NOT be removed again" : "removed again");
                        /* an attribute the device does not have (or may not be written) is a bad
                         * request, not a missing device: vgpud answered 404 for it */
                        if (r == -ENOENT || r == -ELOOP || r == -ENAMETOOLONG || r == -ENOTDIR ||
                            r == -EISDIR) {
                                r = -EINVAL;
                                if (err)
                                        err->code = r;
                        }
                        return r;
                }
        }
        return 1;
}

int backend_mdev_create_action(const struct vgpu_action *a, struct vgpu_error *err) {
        return backend_mdev_create(&a->spec, err);
}

int backend_mdev_remove_action(const struct vgpu_action *a, struct vgpu_error *err) {
        int r = backend_mdev_remove_device(a->spec.uuid);
        return r < 0 ? vgpu_error_set_errno(err, r, "removing %s (%s on %s)", a->spec.uuid,
                                            strempty(a->spec.type), a->spec.parent)
                     : 1;
}

static const char *const mdev_drivers[] = { NULL };

const struct vgpu_backend backend_mdev = {
        .name = "mdev",
        .drivers = mdev_drivers,
        .describe_type = mdev_describe_type,
        .create = backend_mdev_create_action,
        .remove = backend_mdev_remove_action,
};
