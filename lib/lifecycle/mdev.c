/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev.c (lifecycle) — create, remove, define, undefine, start and stop vGPUs, idempotently
 * and under the host lock (see vgpu/lifecycle.h).
 *
 * mdevctl fails when asked to define or start what already exists; here the same request
 * succeeds and changes nothing, and only a conflicting one fails, saying what differs. A
 * creation is only done when it is complete: the device must appear, and every attribute must
 * be written, or the device is removed again before the error is returned.
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
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "lifecycle-internal.h"

#define LOCK_TIMEOUT_MS 30000

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

static void lowercase(char *s) {
        for (; *s; s++)
                if (*s >= 'A' && *s <= 'F')
                        *s = (char) (*s - 'A' + 'a');
}

/* Parent names as sysfs spells them: BDFs normalised, others as given. */
static int normalize_parent(char **parent) {
        char bdf[VGPU_BDF_MAX];
        if (vgpu_bdf_normalize(*parent, bdf) < 0)
                return 0;
        char *s = strdup(bdf);
        if (!s)
                return -ENOMEM;
        free(*parent);
        *parent = s;
        return 0;
}

/* The names of a spec become paths (sysfs, mdevctl's store), also for callers of vgpud who are
 * not root: none may lead out of its directory. */
static int check_spec_names(const struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
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

static int check_spec(struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
        if (!spec->parent || !spec->type)
                return vgpu_error_set(err, -EINVAL, "a parent and a type are needed");
        int r = check_spec_names(spec, err);
        if (r < 0)
                return r;
        if (spec->uuid[0] && !vgpu_uuid_valid(spec->uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID (expected 8-4-4-4-12 hex digits)",
                                      spec->uuid);
        lowercase(spec->uuid);
        if (normalize_parent(&spec->parent) < 0)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        return 0;
}

static const struct vgpu_instance *find_instance(const struct vgpu_host *host, const char *uuid) {
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].uuid, uuid) == 0)
                        return &host->instances[i];
        return NULL;
}

static const struct vgpu_type *find_type(const struct vgpu_parent *p, const char *id) {
        for (size_t i = 0; p && i < p->n_types; i++)
                if (strcmp(p->types[i].id, id) == 0)
                        return &p->types[i];
        return NULL;
}

/* "a, b, c" of the types a parent offers, for messages. */
static void list_types(const struct vgpu_parent *p, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < p->n_types && n < size; i++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", i ? ", " : "", p->types[i].id);
}

static int no_room(const struct vgpu_host *host, const struct vgpu_parent *p, const struct vgpu_type *t,
                   struct vgpu_error *err) {
        char present[512] = "", max[32] = "";
        size_t n = 0, count = 0;
        for (size_t i = 0; i < host->n_instances; i++) {
                const struct vgpu_instance *in = &host->instances[i];
                if (strcmp(in->parent, p->name) != 0)
                        continue;
                count++;
                if (n < sizeof(present))
                        n += (size_t) snprintf(present + n, sizeof(present) - n, "%s%s (%s)",
                                               count > 1 ? ", " : "", in->uuid[0] ? in->uuid : in->parent,
                                               strempty(in->type));
        }
        if (t->max_instances >= 0)
                snprintf(max, sizeof(max), " of %lld", (long long) t->max_instances);
        return vgpu_error_set(
                err, -ENOSPC, "no available instances of %s on %s: 0 left%s; instances present: %s", t->id,
                p->name, max, count ? present : "none (another type or the driver holds the capacity)");
}

/* NVIDIA vendor-VFIO: the VF takes a type by id; it has no UUID. */
static int lifecycle_set_vfio_type(const char *bdf, const char *type, struct vgpu_error *err) {
        char path[256];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type", bdf);
        int r = sysfs_write(path, type);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "setting vGPU type %s on %s (%s%s)", type, bdf,
                                            root_prefix(), path);
        return 1;
}

static int spec_diff(const struct vgpu_mdev_spec *a, const struct vgpu_mdev_spec *b, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        if (strcmp(a->parent, b->parent) != 0)
                n += (size_t) snprintf(buf + n, size - n, "%sparent %s, not %s", n ? "; " : "", a->parent,
                                       b->parent);
        if (n < size && strcmp(a->type, b->type) != 0)
                n += (size_t) snprintf(buf + n, size - n, "%stype %s, not %s", n ? "; " : "", a->type,
                                       b->type);
        if (n < size && a->auto_start != b->auto_start)
                n += (size_t) snprintf(buf + n, size - n, "%sstart %s, not %s", n ? "; " : "",
                                       a->auto_start ? "auto" : "manual", b->auto_start ? "auto" : "manual");
        bool same_attrs = a->n_attrs == b->n_attrs;
        for (size_t i = 0; same_attrs && i < a->n_attrs; i++)
                same_attrs = strcmp(a->attrs[i].key, b->attrs[i].key) == 0 &&
                             strcmp(a->attrs[i].value, b->attrs[i].value) == 0;
        if (n < size && !same_attrs)
                n += (size_t) snprintf(buf + n, size - n, "%sattributes differ", n ? "; " : "");
        return n > 0;
}

/* The definition of uuid, if any (from any parent's directory). */
static int find_definition(const char *uuid, struct vgpu_mdev_spec *ret, struct vgpu_error *err) {
        struct vgpu_mdev_spec *specs;
        size_t n;
        int r = vgpu_mdev_definitions(&specs, &n, NULL, err);
        if (r < 0)
                return r;
        r = 0;
        for (size_t i = 0; i < n; i++)
                if (strcasecmp(specs[i].uuid, uuid) == 0) {
                        *ret = specs[i];
                        specs[i] = (struct vgpu_mdev_spec){};
                        r = 1;
                        break;
                }
        vgpu_mdev_specs_free(specs, n);
        return r;
}

static int define_locked(const struct vgpu_mdev_spec *spec, const struct vgpu_host *host,
                         struct vgpu_error *err) {
        /* a parent that is here must offer the type; an absent one may come later (hotplug, VFs) */
        const struct vgpu_parent *p = vgpu_host_find_parent(host, spec->parent);
        if (p && !find_type(p, spec->type)) {
                char types[512];
                list_types(p, types, sizeof(types));
                return vgpu_error_set(err, -EINVAL, "%s: no type %s on this parent (it offers: %s)",
                                      spec->parent, spec->type, types);
        }
        struct vgpu_mdev_spec old = {};
        int r = find_definition(spec->uuid, &old, err);
        if (r < 0)
                return r;
        if (r > 0) {
                char diff[512];
                bool differs = spec_diff(spec, &old, diff, sizeof(diff));
                vgpu_mdev_spec_done(&old);
                if (!differs)
                        return 0;
                return vgpu_error_set(err, -EEXIST,
                                      "%s is already defined differently (%s): undefine it first", spec->uuid,
                                      diff);
        }
        r = store_write(spec);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "writing the definition %s%s/%s/%s", root_prefix(),
                                            MDEVCTL_STORE, spec->parent, spec->uuid);
        return 1;
}

static int create_locked(struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_error *err) {
        struct vgpu_host *host;
        int r = vgpu_host_scan(VGPU_SCAN_TYPES | VGPU_SCAN_INSTANCES, &host, err);
        if (r < 0)
                return r;
        const struct vgpu_parent *p = vgpu_host_find_parent(host, spec->parent);
        const struct vgpu_type *t = find_type(p, spec->type);
        if (!p)
                r = vgpu_error_set(err, -ENODEV,
                                   "%s: not a vGPU parent here (no mdev_supported_types, no creatable vGPU "
                                   "types; see 'vgpuctl doctor')",
                                   spec->parent);
        else if (!t) {
                char types[512];
                list_types(p, types, sizeof(types));
                r = vgpu_error_set(err, -EINVAL, "%s: no type %s on this parent (it offers: %s)",
                                   spec->parent, spec->type, types[0] ? types : "nothing right now");
        }
        if (r < 0)
                goto out;

        if (t->kind == VGPU_TYPE_NVIDIA_VFIO) {
                for (size_t i = 0; i < host->n_instances; i++)
                        if (strcmp(host->instances[i].parent, p->name) == 0) {
                                r = strcmp(strempty(host->instances[i].type), t->id) == 0
                                            ? 0
                                            : vgpu_error_set(err, -EBUSY,
                                                             "%s already runs vGPU type %s; remove it first",
                                                             p->name, host->instances[i].type);
                                goto out;
                        }
                if (flags & VGPU_CREATE_PERSIST) {
                        r = vgpu_error_set(err, -EOPNOTSUPP,
                                           "%s: vendor-VFIO vGPUs are not mdev devices; mdevctl's store "
                                           "cannot hold them",
                                           p->name);
                        goto out;
                }
                r = lifecycle_set_vfio_type(spec->parent, spec->type, err);
                goto out;
        }

        if (!spec->uuid[0] && (r = vgpu_uuid_generate(spec->uuid)) < 0) {
                vgpu_error_set_errno(err, r, "generating a UUID");
                goto out;
        }
        const struct vgpu_instance *in = find_instance(host, spec->uuid);
        if (in && (strcmp(in->parent, p->name) != 0 || strcmp(strempty(in->type), t->id) != 0)) {
                r = vgpu_error_set(err, -EEXIST, "%s already exists as %s on %s", spec->uuid,
                                   strempty(in->type), in->parent);
                goto out;
        }
        r = in ? 0 : t->available_instances == 0 ? no_room(host, p, t, err) : backend_mdev_create(spec, err);
        if (r >= 0 && (flags & VGPU_CREATE_PERSIST)) {
                int q = define_locked(spec, host, err);
                if (q < 0) {
                        /* all or nothing: the device we just made goes again */
                        if (r > 0)
                                (void) backend_mdev_remove_device(spec->uuid);
                        r = q;
                } else
                        r = r > 0 || q > 0;
        }
out:
        vgpu_host_free(host);
        return r;
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
static void clean_up_after_killed(void) {
        (void) store_remove_temps();
        int fd = root_open_dir("/var/lib/vgpuctl");
        if (fd >= 0) {
                (void) remove_temps_at(fd, ".", is_state_temp);
                close(fd);
        }
        backend_mdev_reap_abandoned();
}

int lifecycle_lock(struct vgpu_error *err) {
        int fd = lock_host(LOCK_TIMEOUT_MS);
        if (fd == -EBUSY)
                return vgpu_error_set(err, fd, "another vgpuctl holds %s/run/vgpuctl/lock; waited %d s",
                                      root_prefix(), LOCK_TIMEOUT_MS / 1000);
        if (fd < 0)
                return vgpu_error_set_errno(err, fd, "taking the lock %s/run/vgpuctl/lock", root_prefix());
        clean_up_after_killed();
        return fd;
}

_public_ int vgpu_mdev_create(struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_error *err) {
        int r = check_spec(spec, err);
        if (r < 0)
                return r;
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        r = create_locked(spec, flags, err);
        unlock_host(lock);
        return r;
}

_public_ int vgpu_mdev_define(struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
        int r = check_spec(spec, err);
        if (r < 0)
                return r;
        if (!spec->uuid[0] && (r = vgpu_uuid_generate(spec->uuid)) < 0)
                return vgpu_error_set_errno(err, r, "generating a UUID");
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        struct vgpu_host *host;
        r = vgpu_host_scan(VGPU_SCAN_TYPES, &host, err);
        if (r >= 0) {
                r = define_locked(spec, host, err);
                vgpu_host_free(host);
        }
        unlock_host(lock);
        return r;
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
        unlock_host(lock);
        return r;
}

_public_ int vgpu_mdev_undefine(const char *uuid, struct vgpu_error *err) {
        return vgpu_mdev_undefine_on(uuid, NULL, err);
}

_public_ int vgpu_mdev_start(const char *uuid, struct vgpu_error *err) {
        if (!vgpu_uuid_valid(uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID", uuid);
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        struct vgpu_mdev_spec spec = {};
        int r = find_definition(uuid, &spec, err);
        if (r == 0)
                r = vgpu_error_set(err, -ENOENT,
                                   "%s is not defined: 'vgpuctl define' it first, or use 'vgpuctl create'",
                                   uuid);
        else if (r > 0)
                r = create_locked(&spec, 0, err);
        vgpu_mdev_spec_done(&spec);
        unlock_host(lock);
        return r;
}

static int remove_locked(const char *what, bool idempotent, struct vgpu_error *err) {
        char path[128];
        if (vgpu_uuid_valid(what)) {
                char uuid[VGPU_UUID_MAX];
                snprintf(uuid, sizeof(uuid), "%s", what);
                lowercase(uuid);
                snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", uuid);
                if (root_access(path, F_OK) < 0)
                        return idempotent ? 0
                                          : vgpu_error_set(err, -ENOENT,
                                                           "%s: no such vGPU instance (not in %s%s)", uuid,
                                                           root_prefix(), path);
                int r = backend_mdev_remove_device(uuid);
                if (r < 0)
                        return vgpu_error_set_errno(err, r, "removing %s (in use by a VM?)", uuid);
                return 1;
        }
        char bdf[VGPU_BDF_MAX], buf[64];
        if (vgpu_bdf_normalize(what, bdf) < 0)
                return vgpu_error_set(err, -EINVAL, "'%s' is neither a UUID nor a PCI address", what);
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type", bdf);
        if (root_read(path, buf, sizeof(buf)) < 0)
                return vgpu_error_set(err, -ENOENT, "%s: not an NVIDIA vendor-VFIO VF (no %s%s)", bdf,
                                      root_prefix(), path);
        if (strcmp(buf, "0") == 0)
                return idempotent ? 0 : vgpu_error_set(err, -ENOENT, "%s runs no vGPU type", bdf);
        int r = sysfs_write(path, "0");
        return r < 0 ? vgpu_error_set_errno(err, r, "clearing the vGPU type of %s (in use by a VM?)", bdf)
                     : 1;
}

_public_ int vgpu_mdev_remove(const char *uuid_or_bdf, struct vgpu_error *err) {
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        int r = remove_locked(uuid_or_bdf, false, err);
        unlock_host(lock);
        return r;
}

_public_ int vgpu_mdev_stop(const char *uuid, struct vgpu_error *err) {
        if (!vgpu_uuid_valid(uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID", uuid);
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        int r = remove_locked(uuid, true, err);
        unlock_host(lock);
        return r;
}
