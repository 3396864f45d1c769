/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev.c (store) — what is left beside the store's file format: UUIDs, undefining (which only
 * touches the store), and the host lock with the clean-up of what a killed change left. Creating,
 * defining, starting, stopping and removing are plans (lib/plan/instance.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/lock.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "store.h"

_public_ bool vgpu_uuid_valid(const char *s) {
        static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
        if (!s || strlen(s) != sizeof(pattern) - 1)
                return false;
        for (size_t i = 0; i < sizeof(pattern) - 1; i++)
                if (pattern[i] == '-' ? s[i] != '-'
                                      : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                                          (s[i] >= 'A' && s[i] <= 'F')))
                        return false;
        return true;
}

_public_ int vgpu_uuid_generate(char ret[VGPU_UUID_MAX]) {
        unsigned char b[16];
        if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b))
                return -errno;
        b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
        snprintf(ret, VGPU_UUID_MAX, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
        return 0;
}

/* "host.yaml.XXXXXX": the saved state's temporary file (write_file_atomic) */
static bool is_state_temp(const char *name) {
        static const char base[] = "host.yaml.";
        return strncmp(name, base, sizeof(base) - 1) == 0 && mkstemp_suffix_ok(name + sizeof(base) - 1);
}

/*
 * What a process killed half-way through a change leaves, put right by the next one that holds
 * the lock (nobody else writes then): temporary files of atomic writes, which mdevctl would
 * read as definitions, and devices whose creation timed out but that appeared afterwards.
 */
static void clean_up_after_killed(unsigned flags) {
        if (!(flags & LOCK_STORE_TEMPS_LATER))
                (void) store_remove_temps();
        int fd = root_open_dir("/var/lib/vgpuctl");
        if (fd >= 0) {
                (void) remove_temps_at(fd, ".", is_state_temp);
                close(fd);
        }
        backend_mdev_reap_abandoned();
}

int lifecycle_lock_flags(unsigned flags, struct vgpu_error *err) {
        int fd = host_lock_take(err);
        if (fd < 0)
                return fd;
        clean_up_after_killed(flags);
        return fd;
}

int lifecycle_lock(struct vgpu_error *err) {
        return lifecycle_lock_flags(0, err);
}

/*
 * mdevctl allows one UUID under several parents (its undefine removes them all). Undefining
 * one of them silently would leave the user believing the UUID is gone: with several, the
 * parent must be named, and the message says which there are.
 */
_public_ int vgpu_mdev_undefine_on(const char *uuid, const char *parent, struct vgpu_error *err) {
        if (!vgpu_uuid_valid(uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID", uuid);
        char bdf[VGPU_BDF_MAX];
        if (parent && vgpu_bdf_normalize(parent, bdf) == 0)
                parent = bdf;
        if (parent && !sysfs_name_ok(parent))
                return vgpu_error_set(err, -EINVAL, "parent '%s': not a device name", parent);
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        struct vgpu_mdev_spec *specs = NULL;
        size_t n = 0, matches = 0;
        const struct vgpu_mdev_spec *found = NULL;
        char parents[512] = "";
        int r = vgpu_mdev_definitions(&specs, &n, NULL, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (strcasecmp(specs[i].uuid, uuid) != 0)
                        continue;
                size_t len = strlen(parents);
                snprintf(parents + len, sizeof(parents) - len, "%s%s", matches ? ", " : "", specs[i].parent);
                matches++;
                if (!parent || strcmp(specs[i].parent, parent) == 0)
                        found = &specs[i];
        }
        if (r < 0)
                ;
        else if (!found && parent && matches)
                r = vgpu_error_set(err, -ENOENT, "%s is not defined on %s (it is on %s)", uuid, parent,
                                   parents);
        else if (!found)
                r = vgpu_error_set(err, -ENOENT, "%s is not defined (nothing in %s%s/*/%s)", uuid,
                                   root_prefix(), MDEVCTL_STORE, uuid);
        else if (!parent && matches > 1)
                r = vgpu_error_set(err, -EEXIST, "%s is defined on %zu parents (%s): say which with --parent",
                                   uuid, matches, parents);
        else {
                int q = store_remove(found->parent, found->uuid);
                r = q < 0 ? vgpu_error_set_errno(err, q, "removing %s%s/%s/%s", root_prefix(), MDEVCTL_STORE,
                                                 found->parent, found->uuid)
                          : 1;
        }
        vgpu_mdev_specs_free(specs, n);
        host_lock_release(lock);
        return r;
}

_public_ int vgpu_mdev_undefine(const char *uuid, struct vgpu_error *err) {
        return vgpu_mdev_undefine_on(uuid, NULL, err);
}
