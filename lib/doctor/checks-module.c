/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-module.c — the vendor's out-of-tree modules against the running kernel: "kernel
 * upgraded, module not rebuilt" is the most common reason a vGPU host comes back from a reboot
 * with no driver, and it deserves its own name and remedy (dkms autoinstall), not "no driver".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "doctor-dl.h"
#include "doctor-internal.h"

static const struct vendor_module {
        const char *name, *dkms;
        uint16_t vendor;
} vendor_modules[] = {
        { "nvidia", "nvidia", VGPU_PCI_VENDOR_NVIDIA },
        { "nvidia-vgpu-vfio", "nvidia", VGPU_PCI_VENDOR_NVIDIA },
        { "gim", "gim", VGPU_PCI_VENDOR_AMD },
};

enum build_state { BUILD_NONE, BUILD_OK, BUILD_MISMATCH, BUILD_NOT_REBUILT, BUILD_NOT_INSTALLED };

static enum build_state judge(const struct vendor_module *m, const char *running, struct text *ev,
                              struct text *what, struct text *rem) {
        struct module_build b;
        int r = doctor_module_build(m->name, m->dkms, running, &b);
        if (r < 0) {
                ev->oom = true;
                return BUILD_NONE;
        }
        if (r == 0)
                return BUILD_NONE;
        if (b.path[0])
                /* unreadable with a reason: libkmod is not installed */
                text_line(ev, "%s: %s%s%s, vermagic %s%s%s", b.path, b.version[0] ? "version " : "",
                          b.version, b.version[0] ? "" : "no version",
                          b.readable ? b.built_for : "unreadable", b.unreadable[0] ? ": " : "", b.unreadable);
        else if (b.other_path[0])
                text_line(ev, "/lib/modules/%s: no %s.ko; another kernel's: %s (version %s, vermagic %s)",
                          running, m->name, b.other_path, b.version[0] ? b.version : "?", b.built_for);
        if (b.dkms_package[0])
                text_line(ev, "/var/lib/dkms/%s: version %s, built for %s: %s, installed for %s: %s",
                          b.dkms_package, b.dkms_version[0] ? b.dkms_version : "?", running,
                          b.dkms_built_running ? "yes" : "no", running,
                          b.dkms_installed_running ? "yes"
                          : b.dkms_other_kernel[0] ? "no"
                                                   : "no record");

        const char *sep = what->len ? "; " : "";
        if (b.path[0] && (!b.readable || streq(b.built_for, running)))
                return BUILD_OK;
        if (b.path[0]) {
                text_append(what, "%s%s is built for kernel %s, the running kernel is %s", sep, m->name,
                            b.built_for, running);
                if (b.dkms_package[0])
                        text_line(rem,
                                  "Rebuild it for the running kernel: apt-get install linux-headers-%s && "
                                  "dkms autoinstall -k %s",
                                  running, running);
                else
                        text_line(rem,
                                  "Reinstall the vendor driver for the running kernel (its .run installer, "
                                  "or the "
                                  "package for kernel %s).",
                                  running);
                return BUILD_MISMATCH;
        }
        if (b.dkms_package[0] && b.dkms_built_running && !b.dkms_installed_running) {
                text_append(what, "%s%s %s is built by DKMS for %s but not installed", sep, m->name,
                            b.dkms_version, running);
                text_line(rem, "Install the built module: dkms install %s/%s -k %s && modprobe %s",
                          b.dkms_package, b.dkms_version, running, m->name);
                return BUILD_NOT_INSTALLED;
        }
        const char *old = b.other_path[0] ? b.built_for : b.dkms_other_kernel;
        text_append(what,
                    "%skernel upgraded, module not rebuilt: %s%s%s is built for %s, not for the running %s",
                    sep, m->name, b.version[0] || b.dkms_version[0] ? " " : "",
                    b.version[0] ? b.version : b.dkms_version, old[0] ? old : "another kernel", running);
        if (b.dkms_package[0])
                text_line(rem,
                          "Build it for the running kernel with DKMS, then load it (or reboot):\n"
                          "  apt-get install linux-headers-%s && dkms autoinstall -k %s && modprobe %s",
                          running, running, m->name);
        else
                text_line(
                        rem,
                        "Reinstall the vendor driver for the running kernel (it was installed without DKMS: "
                        "rerun its .run installer, with --dkms so the next kernel upgrade rebuilds it), then "
                        "modprobe %s",
                        m->name);
        return BUILD_NOT_REBUILT;
}

/* The vendor's modules for GPUs of `vendor` (0: all) against the running kernel. Fills what
 * and rem for each module that does not fit; returns whether one does not, or -ENOMEM. */
int doctor_vendor_modules_stale(uint16_t vendor, const char *running, struct text *ev, struct text *what,
                                struct text *rem) {
        bool stale = false;
        const char *stale_dkms = NULL;
        for (size_t i = 0; i < ELEMENTSOF(vendor_modules); i++) {
                const struct vendor_module *m = &vendor_modules[i];
                if (vendor && m->vendor != vendor)
                        continue;
                /* nvidia-vgpu-vfio comes with nvidia: one summary and one remedy for the package */
                bool same = stale_dkms && streq(stale_dkms, m->dkms);
                struct text quiet_what = {}, quiet_rem = {};
                enum build_state s =
                        judge(m, running, ev, same ? &quiet_what : what, same ? &quiet_rem : rem);
                text_done(&quiet_what);
                text_done(&quiet_rem);
                if (ev->oom || what->oom || rem->oom)
                        return -ENOMEM;
                if (s != BUILD_NONE && s != BUILD_OK) {
                        stale = true;
                        stale_dkms = m->dkms;
                }
        }
        return stale;
}

int check_driver_kernel_match(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, what = {}, rem = {};
        const char *running = d->host->kernel_release;
        if (!running) {
                text_line(&ev, "/proc/sys/kernel/osrelease: unreadable");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "kernel release unknown");
        }
        text_line(&ev, "/proc/sys/kernel/osrelease: %s", running);
        size_t before = ev.len;
        int r = doctor_vendor_modules_stale(0, running, &ev, &what, &rem);
        if (r < 0)
                return r;
        if (r > 0)
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem), "%s", what.s);
        if (ev.len == before) {
                text_line(&ev, "/lib/modules/*, /var/lib/dkms: no nvidia, nvidia-vgpu-vfio or gim module");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                                  "no out-of-tree vGPU host module installed");
        }
        /* without libkmod no vermagic was read: a module in the running kernel's tree may still be
         * another kernel's build, so this is unknown, not a pass */
        struct vgpu_error err = {};
        if (!doctor_libkmod(&err))
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "modules' vermagic unknown: %s",
                                  err.message);
        return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL,
                          "vendor modules built for the running kernel %s", running);
}
