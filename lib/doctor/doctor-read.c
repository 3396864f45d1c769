/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor-read.c — the host reads the checks make beyond the snapshot (whole files, symlinks
 * resolved inside the root, kernel modules, CPU vendor, IOMMU groups), all under VGPU_ROOT.
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
#include "basic/sysfs.h"
#include "doctor-internal.h"

#define READ_FILE_MAX (1 << 20) /* /proc/cpuinfo of a 512-CPU host is ~700 KiB */

int doctor_read_file(const char *path, char **ret) {
        _cleanup_close_ int fd = root_open(path, O_RDONLY | O_NOCTTY);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, allocated = 0;
        for (;;) {
                if (!GREEDY_REALLOC(buf, allocated, len + 4096 + 1))
                        return -ENOMEM;
                ssize_t n = read(fd, buf + len, allocated - len - 1);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len >= READ_FILE_MAX)
                        break; /* enough to decide; the rest is more of the same */
        }
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return (int) len;
}

bool doctor_path_exists(const char *path, char *ret_target, size_t size) {
        char p[4096], target[4096];
        struct stat st;

        if (root_path(p, sizeof(p), path) < 0 || lstat(p, &st) < 0)
                return false;
        if (!S_ISLNK(st.st_mode)) {
                if (ret_target && size > 0)
                        ret_target[0] = '\0';
                return true;
        }
        ssize_t n = readlink(p, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = '\0';
        if (target[0] == '/') {
                /* An absolute target means the host's root: resolve it under ours. */
                if (root_access(target, F_OK) < 0)
                        return false;
        } else {
                char rel[8192];
                const char *slash = strrchr(p, '/');
                snprintf(rel, sizeof(rel), "%.*s/%s", (int) (slash - p), p, target);
                if (access(rel, F_OK) < 0)
                        return false;
        }
        if (ret_target && size > 0)
                snprintf(ret_target, size, "%s", target);
        return true;
}

bool doctor_module_loaded(const char *name) {
        char p[256];
        snprintf(p, sizeof(p), "/sys/module/%s", name);
        return root_access(p, F_OK) == 0;
}

void doctor_driver_module(const char *driver, char *buf, size_t size) {
        char p[256];
        snprintf(p, sizeof(p), "/sys/bus/pci/drivers/%s", driver);
        _cleanup_close_ int fd = root_open_dir(p);
        if (fd >= 0 && sysfs_link_basename_at(fd, "module", buf, size) > 0)
                return;
        snprintf(buf, size, "%s", driver);
        for (char *c = buf; *c; c++)
                if (*c == '-')
                        *c = '_';
}

int doctor_cpu_vendor(char *buf, size_t size) {
        _cleanup_free_ char *info = NULL;
        buf[0] = '\0';
        int r = doctor_read_file("/proc/cpuinfo", &info);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        /* "vendor_id\t: GenuineIntel" on x86; the first processor speaks for all. */
        for (char *line = info; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, "vendor_id", 9) != 0)
                        continue;
                const char *v = strchr(line, ':');
                if (!v)
                        return 0;
                v++;
                while (*v == ' ' || *v == '\t')
                        v++;
                size_t n = strcspn(v, " \t\n");
                snprintf(buf, size, "%.*s", (int) n, v);
                return 0;
        }
        return 0;
}

int doctor_count_iommu_groups(void) {
        int fd = root_open_dir("/sys/kernel/iommu_groups");
        if (fd < 0)
                return 0;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return 0;
        }
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}
