/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-secureboot.c — Secure Boot against the GPU drivers. With Secure Boot on, the kernel's
 * lockdown refuses unsigned modules: an out-of-tree vGPU manager built without a Machine Owner
 * Key either loads tainted (where lockdown is lax) or not at all, which NVIDIA's tools report
 * only as a "communication error" with the driver.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "basic/root.h"
#include "doctor-internal.h"

#define EFI_SECUREBOOT "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

/* Vendor modules that host vGPUs besides the drivers bound to GPUs. */
static const char *const extra_modules[] = { "nvidia_vgpu_vfio", "kvmgt", "gim" };

/* 1 on, 0 off, -ENOENT when the variable is absent. The efivar is 4 bytes of attributes and
 * one byte of value. */
static int secureboot_state(struct text *ev) {
        unsigned char buf[16];
        _cleanup_close_ int fd = root_open(EFI_SECUREBOOT, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (n < 5) {
                text_line(ev, EFI_SECUREBOOT ": %s", fd < 0 ? "absent" : "short");
                return -ENOENT;
        }
        text_line(ev, EFI_SECUREBOOT ": %02x %02x %02x %02x %02x (%s)", buf[0], buf[1], buf[2], buf[3],
                  buf[4], buf[4] == 1 ? "on" : "off");
        return buf[4] == 1;
}

struct modset {
        char names[32][64];
        size_t n;
};

static void modset_add(struct modset *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->names[i], name))
                        return;
        if (s->n < ELEMENTSOF(s->names))
                snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", name);
}

/* The vendor modules a GPU with no driver would be bound by. */
static const char *const *vendor_modules(uint16_t vendor) {
        static const char *const nvidia[] = { "nvidia", NULL };
        static const char *const amd[] = { "gim", "amdgpu", NULL };
        static const char *const intel[] = { "i915", "xe", NULL };
        return vendor == VGPU_PCI_VENDOR_NVIDIA ? nvidia : vendor == VGPU_PCI_VENDOR_AMD ? amd : intel;
}

int check_secureboot_modules(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, bad = {};
        if (root_access("/sys/firmware/efi", F_OK) < 0) {
                text_line(&ev, "/sys/firmware/efi: absent");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                                  "not booted through EFI: no Secure Boot");
        }
        int sb = secureboot_state(&ev);
        if (sb <= 0)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL,
                                  "Secure Boot %s: unsigned modules may load",
                                  sb < 0 ? "state unknown (no SecureBoot variable), taken as off" : "off");

        /* The modules of the drivers bound to GPUs and their VFs, and the vendors' helpers. */
        struct modset mods = {};
        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                char m[64];
                if (!g->driver ||
                    (g->vendor_id != VGPU_PCI_VENDOR_NVIDIA && g->vendor_id != VGPU_PCI_VENDOR_AMD &&
                     g->vendor_id != VGPU_PCI_VENDOR_INTEL))
                        continue;
                doctor_driver_module(g->driver, m, sizeof(m));
                modset_add(&mods, m);
        }
        for (size_t i = 0; i < ELEMENTSOF(extra_modules); i++)
                if (doctor_module_loaded(extra_modules[i]))
                        modset_add(&mods, extra_modules[i]);

        size_t n_bad = 0;
        for (size_t i = 0; i < mods.n; i++) {
                char path[128], taint[32] = "";
                snprintf(path, sizeof(path), "/sys/module/%s/taint", mods.names[i]);
                if (root_read(path, taint, sizeof(taint)) < 0) {
                        text_line(&ev, "%s: absent (built into the kernel)", path);
                        continue;
                }
                text_line(&ev, "%s: %s", path, taint[0] ? taint : "(empty)");
                /* E: the module carries no valid signature (kernel/panic.c TAINT_UNSIGNED_MODULE) */
                if (strchr(taint, 'E')) {
                        text_append(&bad, "%smodule %s is unsigned", n_bad ? "; " : "", mods.names[i]);
                        n_bad++;
                }
        }

        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (!doctor_is_gpu(g) || g->driver)
                        continue;
                bool any = false;
                const char *const *vm = vendor_modules(g->vendor_id);
                for (const char *const *m = vm; *m && !any; m++)
                        any = doctor_module_loaded(*m);
                if (any)
                        continue;
                text_line(&ev, "/sys/bus/pci/devices/%s/driver: absent; /sys/module/%s: absent", g->bdf,
                          vm[0]);
                text_append(&bad, "%s%s has no driver and %s is not loaded (refused by lockdown?)",
                            n_bad ? "; " : "", g->bdf, vm[0]);
                n_bad++;
        }
        if (!text_get(&bad))
                return -ENOMEM;
        if (n_bad == 0)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL,
                                  "Secure Boot on; the GPU modules are signed");
        return doctor_add(
                d, NULL, VGPU_CHECK_FAIL, &ev,
                "Sign the modules with a Machine Owner Key and enroll it (DKMS on Debian 12 signs what it "
                "builds with it):\n"
                "  mokutil --import /var/lib/dkms/mok.pub   # then reboot and enroll the key in the MOK "
                "manager\n"
                "  dkms autoinstall --force                 # rebuild and sign the DKMS modules\n"
                "For NVIDIA's .run installer pass the same key:\n"
                "  sh NVIDIA-Linux-x86_64-*.run --dkms --module-signing-secret-key=/var/lib/dkms/mok.key "
                "--module-signing-public-key=/var/lib/dkms/mok.pub\n"
                "Or disable Secure Boot in the firmware setup.",
                "Secure Boot on: %s", bad.s);
}
