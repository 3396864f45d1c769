/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-system.c — the host's own prerequisites, before any GPU: privileges, the kernel's
 * version and headers, and the tools vendor installers and the kernel's sample drivers need.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/root.h"
#include "doctor-internal.h"

#define CAP_SYS_ADMIN 21

/* The value of "Key:" in a /proc/PID/status text into buf (tabs squeezed to spaces). */
static bool status_field(const char *status, const char *key, char *buf, size_t size) {
        size_t n = strlen(key);
        for (const char *line = status; line && *line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, key, n) != 0 || line[n] != ':')
                        continue;
                const char *v = line + n + 1;
                size_t o = 0;
                while (*v && *v != '\n' && o + 1 < size) {
                        char c = *v++;
                        if (c == '\t')
                                c = ' ';
                        if (c == ' ' && (o == 0 || buf[o - 1] == ' '))
                                continue;
                        buf[o++] = c;
                }
                while (o > 0 && buf[o - 1] == ' ')
                        o--;
                buf[o] = '\0';
                return true;
        }
        return false;
}

int check_privileges(struct doctor *d) {
        _cleanup_text_ struct text ev = {};
        _cleanup_free_ char *status = NULL;
        char uid[128] = "", capeff[64] = "";

        int r = doctor_read_file("/proc/self/status", &status);
        if (r == -ENOMEM)
                return r; /* not "unreadable": that would be a finding, and a wrong one */
        if (r < 0) {
                text_line(&ev, "/proc/self/status: unreadable");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                                  "privileges unknown: /proc/self/status unreadable");
        }
        bool have_uid = status_field(status, "Uid", uid, sizeof(uid));
        bool have_cap = status_field(status, "CapEff", capeff, sizeof(capeff));
        text_line(&ev, "/proc/self/status: Uid: %s, CapEff: %s", have_uid ? uid : "(absent)",
                  have_cap ? capeff : "(absent)");

        /* Uid: real effective saved fs; the effective one decides. */
        unsigned long real = 0, effective = 1;
        bool root = have_uid && sscanf(uid, "%lu %lu", &real, &effective) == 2 && effective == 0;
        uint64_t caps = have_cap ? strtoull(capeff, NULL, 16) : 0;
        bool sys_admin = caps & (UINT64_C(1) << CAP_SYS_ADMIN);

        if (root)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "running as root");
        if (sys_admin)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "running with CAP_SYS_ADMIN");
        return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev,
                          "Run vgpuctl as root for commands that change the host:\n"
                          "  sudo vgpuctl COMMAND ...",
                          "not root and no CAP_SYS_ADMIN: read-only commands work, changes will be refused");
}

int check_kernel_version(struct doctor *d) {
        _cleanup_text_ struct text ev = {};
        const char *rel = d->host->kernel_release;
        unsigned major = 0, minor = 0;

        if (!rel || sscanf(rel, "%u.%u", &major, &minor) != 2) {
                text_line(&ev, "/proc/sys/kernel/osrelease: %s", rel ? rel : "unreadable");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "kernel version unknown");
        }
        text_line(&ev, "/proc/sys/kernel/osrelease: %s", rel);
        if (major > 5 || (major == 5 && minor >= 15))
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "kernel %u.%u >= 5.15", major, minor);
        /* 5.15 is the first LTS with the mdev ABI as we drive it (mdev_type groups reworked in
         * 5.13-5.15, vfio_device_ops per device) and the vendors' current host drivers. */
        return doctor_add(
                d, NULL, VGPU_CHECK_FAIL, &ev,
                "Install a kernel of version 5.15 or newer and boot it, e.g. on Debian 12:\n"
                "  apt-get install linux-image-amd64 && reboot",
                "kernel %u.%u is older than 5.15: the mdev and VFIO interfaces vGPU drivers need are missing",
                major, minor);
}

int check_kernel_headers(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, rem = {};
        const char *rel = d->host->kernel_release;
        if (!rel) {
                text_line(&ev, "/proc/sys/kernel/osrelease: unreadable");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "kernel release unknown");
        }

        char path[512], target[4096];
        snprintf(path, sizeof(path), "/lib/modules/%s/build", rel);
        if (doctor_path_exists(path, target, sizeof(target))) {
                if (target[0])
                        text_line(&ev, "%s: -> %s", path, target);
                else
                        text_line(&ev, "%s: present", path);
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "headers for kernel %s installed",
                                  rel);
        }
        text_line(&ev, "%s: absent (or a dangling link)", path);
        text_line(&rem, "Install the headers of the running kernel:");
        text_line(&rem, "  apt-get install linux-headers-%s", rel);
        if (!text_get(&rem))
                return -ENOMEM;
        return doctor_add(
                d, NULL, VGPU_CHECK_WARN, &ev, text_get(&rem),
                "no headers for kernel %s: vendor drivers (DKMS) and the sample mdev drivers cannot be built",
                rel);
}

int check_tools_present(struct doctor *d) {
        static const struct {
                const char *tool, *package;
        } tools[] = {
                { "lspci", "pciutils" },
                { "gcc", "gcc" },
                { "make", "make" },
        };
        static const char *const dirs[] = { "/usr/bin", "/usr/sbin", "/bin", "/sbin" };
        _cleanup_text_ struct text ev = {}, missing = {}, packages = {};

        for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                const char *found = NULL;
                char path[64];
                for (size_t j = 0; !found && j < ELEMENTSOF(dirs); j++) {
                        snprintf(path, sizeof(path), "%s/%s", dirs[j], tools[i].tool);
                        /* existence, not the x bit: support bundles record tools as empty files */
                        if (doctor_path_exists(path, NULL, 0))
                                found = path;
                }
                if (found)
                        text_line(&ev, "%s: present", found);
                else {
                        text_line(&ev, "%s: not in /usr/bin, /usr/sbin, /bin, /sbin", tools[i].tool);
                        text_append(&missing, "%s%s", missing.len ? ", " : "", tools[i].tool);
                        text_append(&packages, " %s", tools[i].package);
                }
        }
        if (!text_get(&missing) || !text_get(&packages))
                return -ENOMEM;
        if (missing.len == 0)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "lspci, gcc and make present");

        _cleanup_text_ struct text rem = {};
        text_line(&rem, "Install them:");
        text_line(&rem, "  apt-get install%s", packages.s);
        if (!text_get(&rem))
                return -ENOMEM;
        return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev, text_get(&rem),
                          "missing %s: needed to inspect PCI devices and build vendor drivers", missing.s);
}
