/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-service.c — the vendor's host-side services: NVIDIA's vGPU manager daemon
 * (nvidia-vgpu-mgr.service, and nvidia-vgpud.service on the branches that have it) — "if this
 * service fails, the hypervisor cannot spawn vGPUs" — and AMD's GIM module with its kernel
 * messages. Only where that vendor's vGPU host driver is installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/root.h"
#include "doctor-internal.h"

#define LOG_LINES 5

static bool unit_installed(const char *unit) {
        static const char *const dirs[] = { "/etc/systemd/system", "/usr/lib/systemd/system",
                                            "/lib/systemd/system" };
        char p[256];
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(p, sizeof(p), "%s/%s", dirs[i], unit);
                if (doctor_path_exists(p, NULL, 0))
                        return true;
        }
        return false;
}

/* The NVIDIA vGPU host driver: its mdev module (Turing/Ampere), NVML in vGPU host mode
 * (SR-IOV boards with the vendor VFIO driver), or the manager's unit file. */
static bool nvidia_vgpu_host(const struct vgpu_host *host, struct text *ev) {
        bool vfio = doctor_module_loaded("nvidia_vgpu_vfio");
        text_line(ev, "/sys/module/nvidia_vgpu_vfio: %s", vfio ? "loaded" : "absent");
        bool host_mode = false;
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (g->vendor_id == VGPU_PCI_VENDOR_NVIDIA && g->nvml && g->nvml->virtualization_mode == 3) {
                        text_line(ev, "nvml %s: virtualization mode 3 (vGPU host)", g->bdf);
                        host_mode = true;
                        break;
                }
        }
        bool unit = unit_installed("nvidia-vgpu-mgr.service");
        text_line(ev, "nvidia-vgpu-mgr.service unit file: %s", unit ? "installed" : "absent");
        return vfio || host_mode || unit;
}

/* One unit: its state line in ev, and the worst status so far in *worst; for a failed or
 * stopped unit the remedy lines in rem and its last log lines in ev. 0 or -ENOMEM. */
static int judge_unit(const char *unit, const char *ident, struct text *ev, struct text *rem,
                      struct text *what, enum vgpu_check_status *worst, bool *known) {
        struct unit_state st;
        char source[256];
        int r = doctor_unit_state(unit, &st, source, sizeof(source));
        if (r < 0)
                return r;
        if (r == 0) {
                text_line(ev, "%s: state unknown: %s", unit, source);
                return 0;
        }
        *known = true;
        text_line(ev, "%s: LoadState=%s ActiveState=%s SubState=%s Result=%s ExecMainStatus=%d [%s]", unit,
                  st.load, st.active, st.sub, st.result[0] ? st.result : "-", st.exec_main_status, source);
        if (streq(st.active, "active")) {
                if (*worst == VGPU_CHECK_SKIP)
                        *worst = VGPU_CHECK_PASS;
                return 0;
        }
        if (streq(st.load, "not-found")) {
                text_append(what, "%s%s is not installed", what->len ? "; " : "", unit);
                text_line(rem, "Install the NVIDIA vGPU Manager (host driver) package again, e.g. "
                               "sh ./NVIDIA-Linux-x86_64-*-vgpu-kvm.run or apt-get install "
                               "./nvidia-vgpu-ubuntu-*.deb, then reboot.");
                *worst = VGPU_CHECK_FAIL;
                return 0;
        }
        if (streq(st.active, "activating") || streq(st.active, "reloading")) {
                text_append(what, "%s%s is %s", what->len ? "; " : "", unit, st.active);
                text_line(rem, "Wait for it, then: systemctl status %s", unit);
                if (*worst != VGPU_CHECK_FAIL)
                        *worst = VGPU_CHECK_WARN;
                return 0;
        }
        bool failed = streq(st.active, "failed");
        text_append(what, "%s%s %s", what->len ? "; " : "", unit, failed ? "failed" : "is not running");
        if (failed && st.result[0])
                text_append(what, " (%s)", st.result);
        r = doctor_unit_log_tail(unit, ident, LOG_LINES, ev);
        if (r < 0)
                return r;
        if (failed) {
                text_line(rem, "Read why it failed: journalctl -b -u %s", unit);
                text_line(rem,
                          "  (\"vGPU manager\" and VFIO errors there usually mean the host driver and the "
                          "kernel "
                          "do not match, or the GPU is in the wrong mode), fix that, then: systemctl restart "
                          "%s",
                          unit);
        } else
                text_line(rem, "Start it and have it start at boot: systemctl enable --now %s", unit);
        *worst = VGPU_CHECK_FAIL;
        return 0;
}

int check_nvidia_vgpu_mgr(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, rem = {}, what = {};
        if (!nvidia_vgpu_host(d->host, &ev))
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no NVIDIA vGPU host driver");

        enum vgpu_check_status worst = VGPU_CHECK_SKIP;
        bool known = false;
        int r = judge_unit("nvidia-vgpu-mgr.service", "nvidia-vgpu-mgr", &ev, &rem, &what, &worst, &known);
        /* nvidia-vgpud.service: the branches before vGPU 16 (it sets up the VFs' types); only
         * where its unit is installed */
        if (r >= 0 && unit_installed("nvidia-vgpud.service"))
                r = judge_unit("nvidia-vgpud.service", "nvidia-vgpud", &ev, &rem, &what, &worst, &known);
        if (r < 0)
                return r;
        if (!text_get(&rem) || !text_get(&what))
                return -ENOMEM;
        if (!known)
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "vGPU manager service state unknown");
        if (worst == VGPU_CHECK_PASS)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "vGPU manager service active");

        /* a manager without its kernel module fails whatever else is right: name that first */
        _cleanup_text_ struct text mod_ev = {}, mod_what = {}, mod_rem = {}, full = {};
        r = d->host->kernel_release
                    ? doctor_vendor_modules_stale(VGPU_PCI_VENDOR_NVIDIA, d->host->kernel_release, &mod_ev,
                                                  &mod_what, &mod_rem)
                    : 0;
        if (r < 0)
                return r;
        if (r > 0) {
                text_line(&full, "First the driver (see driver.kernel_match): %s", mod_rem.s);
                text_line(&full, "%s", rem.s);
                if (!text_get(&full))
                        return -ENOMEM;
                return doctor_add(d, NULL, worst, &ev, full.s, "%s: the hypervisor cannot create vGPUs (%s)",
                                  what.s, mod_what.s);
        }
        return doctor_add(d, NULL, worst, &ev, text_get(&rem), "%s: the hypervisor cannot create vGPUs",
                          what.s);
}

/* GIM's printk prefixes: "gim info:(func:line) ...", "gim error:(func:line) ...". */
static const char *const gim_lines[] = { "gim info", "gim error", "gim warn", "gim: ", NULL };
static const char *const gim_errors[] = { "gim error", NULL };

int check_amd_gim(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, bound = {}, errors = {};
        size_t n_bound = 0;
        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (g->vendor_id == VGPU_PCI_VENDOR_AMD && doctor_is_gpu(g) && streq_ptr(g->driver, "gim")) {
                        text_append(&bound, "%s%s", n_bound ? ", " : "", g->bdf);
                        n_bound++;
                }
        }
        if (bound.oom)
                return -ENOMEM;
        bool loaded = doctor_module_loaded("gim");
        char version[64] = "";
        if (loaded && root_read("/sys/module/gim/version", version, sizeof(version)) < 0)
                version[0] = '\0';
        text_line(&ev, "/sys/module/gim: %s%s%s", loaded ? "loaded" : "absent",
                  version[0] ? ", version " : "", version);
        text_line(&ev, "AMD GPUs bound to gim: %s", n_bound ? text_get(&bound) : "none");
        if (!loaded && n_bound == 0)
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                                  "AMD GIM (MxGPU host driver) not in use");

        int n_errors = doctor_kernel_log_grep(gim_errors, 1, &errors);
        if (n_errors < 0)
                return n_errors;
        int r = doctor_kernel_log_grep(gim_lines, 5, &ev);
        if (r < 0)
                return r;
        if (n_errors > 0)
                return doctor_add(
                        d, NULL, VGPU_CHECK_WARN, &ev,
                        "Read GIM's messages of this boot: journalctl -k -b | grep -i gim (or dmesg | grep "
                        "-i gim);\n"
                        "check the card and firmware against the GIM release's support list, then reload it "
                        "with the VMs stopped: modprobe -r gim && modprobe gim",
                        "GIM logged %d error%s this boot", n_errors, n_errors == 1 ? "" : "s");
        if (n_bound == 0)
                return doctor_add(
                        d, NULL, VGPU_CHECK_WARN, &ev,
                        "GIM did not take the GPU: check its messages (dmesg | grep -i gim), that SR-IOV is "
                        "on in "
                        "the firmware and that amdgpu does not hold the card (lspci -k -d 1002:), then: "
                        "modprobe -r gim && modprobe gim",
                        "gim is loaded but no AMD GPU is bound to it");
        return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "GIM %s drives %s",
                          version[0] ? version : "(no version)", text_get(&bound));
}
