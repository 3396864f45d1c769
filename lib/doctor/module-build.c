/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * module-build.c — which kernel an out-of-tree vendor module (nvidia, nvidia-vgpu-vfio, gim) is
 * built for. After a kernel upgrade without a rebuild the module exists only for the old kernel,
 * modprobe finds nothing and the GPU stays without a driver: the doctor names that, from the
 * module files' own vermagic (libkmod reads .modinfo) and DKMS's records in /var/lib/dkms.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/root.h"
#include "doctor-dl.h"
#include "doctor-internal.h"

#define WALK_DEPTH 8

static bool ko_name_is(const char *file, const char *name) {
        /* NAME.ko, NAME.ko.xz, NAME.ko.zst, NAME.ko.gz; '-' and '_' are one to the kernel */
        size_t n = strlen(name);
        if (strlen(file) < n + 3)
                return false;
        for (size_t i = 0; i < n; i++) {
                char a = file[i] == '-' ? '_' : file[i], b = name[i] == '-' ? '_' : name[i];
                if (a != b)
                        return false;
        }
        const char *ext = file + n;
        return streq(ext, ".ko") || streq(ext, ".ko.xz") || streq(ext, ".ko.zst") || streq(ext, ".ko.gz");
}

/* Depth-first under dir (a root-relative path) for the module file; updates/ first, as depmod
 * ranks it. Writes the root-relative path to ret. */
static bool find_ko(const char *dir, const char *name, int depth, char *ret, size_t size) {
        if (depth > WALK_DEPTH)
                return false;
        int fd = root_open_dir(dir);
        if (fd < 0)
                return false;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return false;
        }
        bool found = false;
        struct dirent *de;
        char sub[1024];
        /* files of this directory first */
        while (!found && (de = readdir(d)))
                if ((de->d_type == DT_REG || de->d_type == DT_UNKNOWN) && ko_name_is(de->d_name, name)) {
                        snprintf(ret, size, "%s/%s", dir, de->d_name);
                        found = true;
                }
        if (!found && depth == 0) {
                snprintf(sub, sizeof(sub), "%s/updates", dir);
                found = find_ko(sub, name, depth + 1, ret, size);
        }
        rewinddir(d);
        while (!found && (de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
                    (depth == 0 && streq(de->d_name, "updates")))
                        continue;
                snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
                found = find_ko(sub, name, depth + 1, ret, size);
        }
        closedir(d);
        return found;
}

/* vermagic's first word (the kernel release) and the version, through libkmod. 0, -ENOMEM,
 * -EOPNOTSUPP without libkmod (err names it), or another -errno when the file is no module. */
static int read_modinfo(const char *relpath, char *release, size_t rsize, char *version, size_t vsize,
                        struct vgpu_error *err) {
        char path[4096], moddir[4096];
        if (root_path(path, sizeof(path), relpath) < 0 ||
            root_path(moddir, sizeof(moddir), "/lib/modules") < 0)
                return -ENAMETOOLONG;
        const struct libkmod_dl *km = doctor_libkmod(err);
        if (!km)
                return -EOPNOTSUPP;
        /* the context's directory only matters for lookups by name; we give a path */
        static const char *const no_config[] = { NULL }; /* no modprobe.d: nothing is loaded */
        struct kmod_ctx *ctx = km->kmod_new(moddir, no_config);
        if (!ctx)
                return -ENOMEM;
        struct kmod_module *mod = NULL;
        struct kmod_list *info = NULL;
        int r = km->kmod_module_new_from_path(ctx, path, &mod);
        if (r >= 0)
                r = km->kmod_module_get_info(mod, &info);
        if (r >= 0) {
                /* kmod_list_foreach, through the loaded table */
                for (struct kmod_list *l = info; l; l = km->kmod_list_next(info, l)) {
                        const char *k = km->kmod_module_info_get_key(l),
                                   *v = km->kmod_module_info_get_value(l);
                        if (streq(k, "vermagic"))
                                snprintf(release, rsize, "%.*s", (int) strcspn(v, " "), v);
                        else if (streq(k, "version"))
                                snprintf(version, vsize, "%s", v);
                }
                km->kmod_module_info_free_list(info);
                r = release[0] ? 0 : -ENODATA;
        }
        km->kmod_module_unref(mod);
        km->kmod_unref(ctx);
        return r;
}

/* DKMS: /var/lib/dkms/PKG/VERSION/KVER/ARCH/module (built), kernel-KVER-ARCH links (installed). */
static void read_dkms(const char *pkg, const char *running, struct module_build *b) {
        char dir[256];
        snprintf(dir, sizeof(dir), "/var/lib/dkms/%s", pkg);
        int fd = root_open_dir(dir);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        snprintf(b->dkms_package, sizeof(b->dkms_package), "%s", pkg);
        struct dirent *de;
        char p[512];
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (strncmp(de->d_name, "kernel-", 7) == 0) {
                        /* kernel-KVER-ARCH */
                        const char *kver = de->d_name + 7, *dash = strrchr(kver, '-');
                        size_t n = dash ? (size_t) (dash - kver) : strlen(kver);
                        if (strlen(running) == n && strncmp(kver, running, n) == 0)
                                b->dkms_installed_running = true;
                        else if (!b->dkms_other_kernel[0])
                                snprintf(b->dkms_other_kernel, sizeof(b->dkms_other_kernel), "%.*s", (int) n,
                                         kver);
                        continue;
                }
                if (de->d_type != DT_DIR)
                        continue;
                if (!b->dkms_version[0] || strcmp(de->d_name, b->dkms_version) > 0)
                        snprintf(b->dkms_version, sizeof(b->dkms_version), "%s", de->d_name);
                snprintf(p, sizeof(p), "%s/%s/%s", dir, de->d_name, running);
                if (doctor_path_exists(p, NULL, 0))
                        b->dkms_built_running = true;
        }
        closedir(d);
}

int doctor_module_build(const char *name, const char *dkms_package, const char *running,
                        struct module_build *ret) {
        struct module_build *b = ret;
        *b = (struct module_build){};
        char dir[512];
        if (running) {
                snprintf(dir, sizeof(dir), "/lib/modules/%s", running);
                if (find_ko(dir, name, 0, b->path, sizeof(b->path))) {
                        struct vgpu_error err = {};
                        int r = read_modinfo(b->path, b->built_for, sizeof(b->built_for), b->version,
                                             sizeof(b->version), &err);
                        if (r == -ENOMEM)
                                return r;
                        b->readable = r >= 0;
                        if (r == -EOPNOTSUPP)
                                snprintf(b->unreadable, sizeof(b->unreadable), "%s", err.message);
                }
        }
        if (!b->path[0]) {
                /* another kernel's copy: the one a kernel upgrade left behind */
                int fd = root_open_dir("/lib/modules");
                DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
                if (fd >= 0 && !d)
                        close(fd);
                struct dirent *de;
                while (d && !b->other_path[0] && (de = readdir(d))) {
                        if (de->d_name[0] == '.' || (running && streq(de->d_name, running)))
                                continue;
                        snprintf(dir, sizeof(dir), "/lib/modules/%s", de->d_name);
                        if (find_ko(dir, name, 0, b->other_path, sizeof(b->other_path))) {
                                int r = read_modinfo(b->other_path, b->built_for, sizeof(b->built_for),
                                                     b->version, sizeof(b->version), NULL);
                                if (r == -ENOMEM) {
                                        closedir(d);
                                        return r;
                                }
                                if (!b->built_for[0])
                                        snprintf(b->built_for, sizeof(b->built_for), "%s", de->d_name);
                        }
                }
                if (d)
                        closedir(d);
        }
        if (dkms_package && running)
                read_dkms(dkms_package, running, b);
        return b->path[0] || b->other_path[0] || b->dkms_package[0];
}
