/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-driver.c — the vendor driver side: is each GPU bound to a driver that can carve it into
 * vGPUs, does that driver offer vGPU types (and if not, which prerequisite is missing), is one
 * board model used per vendor, and is NVIDIA's persistence mode on.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "basic/root.h"
#include "doctor-internal.h"

static void driver_evidence(struct text *ev, const struct vgpu_gpu *g) {
        text_line(ev, "/sys/bus/pci/devices/%s: %04x:%04x, driver %s", g->bdf, g->vendor_id, g->device_id,
                  g->driver ? g->driver : "(none)");
}

static const char *install_remedy(uint16_t vendor) {
        switch (vendor) {
        case VGPU_PCI_VENDOR_NVIDIA:
                return "Install NVIDIA's vGPU manager for KVM (NVIDIA-Linux-x86_64-VERSION-vgpu-kvm.run, "
                       "from the NVIDIA "
                       "Licensing Portal) for the running kernel, and load it:\n"
                       "  sh NVIDIA-Linux-x86_64-*-vgpu-kvm.run --dkms\n"
                       "  modprobe nvidia";
        case VGPU_PCI_VENDOR_AMD:
                return "Install AMD's GIM driver (MxGPU host driver: github.com/amd/MxGPU-Virtualization) "
                       "and load it:\n"
                       "  modprobe gim";
        default:
                return "Load the Intel GPU driver:\n"
                       "  modprobe i915";
        }
}

int check_driver_loaded(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {}, rem = {};
        char vbuf[8];
        const char *vendor = doctor_vendor_name(g->vendor_id, vbuf);
        driver_evidence(&ev, g);

        if (doctor_gpu_driver_hosts_vgpus(g))
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "bound to %s, which can host vGPUs",
                                  g->driver);

        if (!g->driver) {
                /* the usual cause after a reboot: a new kernel the module was not rebuilt for */
                _cleanup_text_ struct text what = {};
                int r = d->host->kernel_release
                                ? doctor_vendor_modules_stale(g->vendor_id, d->host->kernel_release, &ev,
                                                              &what, &rem)
                                : 0;
                if (r < 0)
                        return r;
                if (r > 0)
                        return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                          "no driver bound: %s", what.s);
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, install_remedy(g->vendor_id),
                                  "no driver bound: the %s vGPU host driver is not loaded", vendor);
        }

        if (streq(g->driver, "nouveau")) {
                text_line(&rem, "Blacklist nouveau, rebuild the initramfs and reboot:");
                text_line(&rem, "  printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' > "
                                "/etc/modprobe.d/blacklist-nouveau.conf");
                text_line(&rem, "  update-initramfs -u && reboot");
                text_line(&rem, "then install the vGPU manager:");
                text_line(&rem, "%s", install_remedy(g->vendor_id));
                if (!text_get(&rem))
                        return -ENOMEM;
                return doctor_add(
                        d, g->bdf, VGPU_CHECK_FAIL, &ev, rem.s,
                        "bound to nouveau, which cannot host vGPUs: the vGPU manager cannot load beside it");
        }

        if (streq(g->driver, "vfio-pci") || streq(g->driver, "pci-stub")) {
                text_line(&rem, "Give the GPU back to the host:");
                text_line(&rem, "  echo %s > /sys/bus/pci/drivers/%s/unbind", g->bdf, g->driver);
                text_line(&rem, "  echo > /sys/bus/pci/devices/%s/driver_override", g->bdf);
                text_line(&rem, "  echo %s > /sys/bus/pci/drivers_probe", g->bdf);
                text_line(&rem,
                          "and remove %04x:%04x from %s.ids= (kernel command line, /etc/modprobe.d/*.conf), "
                          "then "
                          "update-initramfs -u.",
                          g->vendor_id, g->device_id, g->driver);
                if (!text_get(&rem))
                        return -ENOMEM;
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem.s,
                                  "bound to %s: the whole GPU is reserved for passthrough and cannot be "
                                  "carved into vGPUs",
                                  g->driver);
        }

        if (streq(g->driver, "amdgpu"))
                return doctor_add(
                        d, g->bdf, VGPU_CHECK_FAIL, &ev,
                        "AMD MxGPU needs an SR-IOV board (Instinct, Radeon Pro V) with SR-IOV enabled in the "
                        "firmware, and the GIM driver:\n  modprobe gim",
                        "bound to amdgpu on a card without SR-IOV: amdgpu hosts no vGPUs there");

        text_line(&rem, "Unbind it and load the %s vGPU host driver:", vendor);
        text_line(&rem, "  echo %s > /sys/bus/pci/drivers/%s/unbind", g->bdf, g->driver);
        text_line(&rem, "%s", install_remedy(g->vendor_id));
        if (!text_get(&rem))
                return -ENOMEM;
        return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem.s, "bound to %s, which cannot host vGPUs",
                          g->driver);
}

/* vGPU types offered by a parent named `name`, and instances living on it. */
static void count_types(const struct vgpu_host *host, const char *name, size_t *types, size_t *instances) {
        const struct vgpu_parent *p = vgpu_host_find_parent(host, name);
        if (p)
                *types += p->n_types;
        for (size_t i = 0; i < host->n_instances; i++)
                if (streq(host->instances[i].parent, name))
                        (*instances)++;
}

static int mdev_types_nvidia(struct doctor *d, const struct vgpu_gpu *g, struct text *ev) {
        char rem[512];
        bool vfio = doctor_module_loaded("nvidia_vgpu_vfio");
        text_line(ev, "/sys/module/nvidia_vgpu_vfio: %s", vfio ? "present" : "absent");
        if (!vfio)
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, ev,
                                  "Replace the driver with NVIDIA's vGPU manager for KVM (the "
                                  "consumer/datacenter driver has no "
                                  "vGPU support):\n"
                                  "  nvidia-uninstall        # or: apt-get purge '*nvidia*'\n"
                                  "  sh NVIDIA-Linux-x86_64-*-vgpu-kvm.run --dkms && reboot\n"
                                  "check with: lsmod | grep nvidia_vgpu_vfio",
                                  "no vGPU types: the nvidia driver is not the vGPU manager (no "
                                  "nvidia_vgpu_vfio module; a "
                                  "consumer or datacenter driver is installed)");

        if (g->sriov && g->total_vfs > 0 && g->num_vfs == 0) {
                text_line(ev, "/sys/bus/pci/devices/%s/sriov_numvfs: 0 of %u", g->bdf, g->total_vfs);
                snprintf(rem, sizeof(rem),
                         "Enable the VFs (on every boot, e.g. from a systemd unit):\n"
                         "  /usr/lib/nvidia/sriov-manage -e %s",
                         g->bdf);
                return doctor_add(
                        d, g->bdf, VGPU_CHECK_FAIL, ev, rem,
                        "no vGPU types: this SR-IOV card offers vGPUs on its VFs, and they are disabled");
        }
        if (g->nvml && g->nvml->virtualization_mode >= 0)
                text_line(ev, "nvml: virtualization mode %d (3 = vGPU host)", g->nvml->virtualization_mode);
        return doctor_add(
                d, g->bdf, VGPU_CHECK_FAIL, ev,
                "Check that the vGPU manager's release supports this board (release notes) and what the "
                "driver "
                "said:\n  dmesg | grep -i -e NVRM -e vgpu\n"
                "Boards with display outputs (A40, L40, RTX A6000...) must be in \"DC\" display mode: "
                "displaymodeselector --gpumode physical_display_disabled",
                "no vGPU types although the vGPU manager is loaded: the driver does not offer vGPUs on this "
                "board");
}

static int mdev_types_intel(struct doctor *d, const struct vgpu_gpu *g, struct text *ev) {
        _cleanup_text_ struct text rem = {};
        if (g->sriov && g->total_vfs > 0) {
                text_line(ev, "/sys/bus/pci/devices/%s/sriov_numvfs: %u of %u", g->bdf, g->num_vfs,
                          g->total_vfs);
                if (g->num_vfs > 0)
                        return doctor_add(d, g->bdf, VGPU_CHECK_PASS, ev, NULL,
                                          "%u SR-IOV VFs enabled: each VF is a vGPU (no mdev types)",
                                          g->num_vfs);
                text_line(&rem, "Enable the VFs:");
                text_line(&rem, "  echo %u > /sys/bus/pci/devices/%s/sriov_numvfs", g->total_vfs, g->bdf);
                if (!text_get(&rem))
                        return -ENOMEM;
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, ev, rem.s,
                                  "no vGPUs: the SR-IOV VFs are disabled");
        }
        if (!streq(g->driver, "i915"))
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, ev,
                                  "GVT-g lives in i915: boot with i915 bound to this GPU (xe has no GVT-g)",
                                  "no vGPU types: %s offers neither GVT-g nor SR-IOV VFs on this GPU",
                                  g->driver);

        char gvt[16] = "";
        bool have = root_read("/sys/module/i915/parameters/enable_gvt", gvt, sizeof(gvt)) >= 0;
        text_line(ev, "/sys/module/i915/parameters/enable_gvt: %s", have ? gvt : "absent");
        if (!streq(gvt, "Y")) {
                static const char *const words[] = { "i915.enable_gvt=1", NULL };
                cmdline_grub_remedy(&rem, ev, words);
                text_line(&rem, "and load the KVM side of GVT-g at boot:");
                text_line(&rem, "  echo kvmgt > /etc/modules-load.d/kvmgt.conf");
                if (!text_get(&rem))
                        return -ENOMEM;
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, ev, rem.s,
                                  "no vGPU types: GVT-g is off (i915.enable_gvt=1 missing from the kernel "
                                  "command line)");
        }
        bool kvmgt = doctor_module_loaded("kvmgt");
        text_line(ev, "/sys/module/kvmgt: %s", kvmgt ? "present" : "absent");
        if (!kvmgt)
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, ev,
                                  "Load it, now and at boot:\n"
                                  "  modprobe kvmgt\n"
                                  "  echo kvmgt > /etc/modules-load.d/kvmgt.conf",
                                  "no vGPU types: GVT-g is on but the kvmgt module is not loaded");
        return doctor_add(
                d, g->bdf, VGPU_CHECK_FAIL, ev,
                "GVT-g supports Intel GPUs of generations 8 to 10 (Broadwell to Comet Lake); newer ones "
                "offer "
                "SR-IOV VFs instead (i915/xe with sriov_totalvfs > 0)",
                "no vGPU types although GVT-g is on and kvmgt loaded: this GPU generation has no GVT-g");
}

int check_mdev_types(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        driver_evidence(&ev, g);
        if (!doctor_gpu_driver_hosts_vgpus(g))
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL,
                                  "no vGPU-capable driver bound (see driver.loaded)");
        if (g->vendor_id == VGPU_PCI_VENDOR_AMD)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL,
                                  "AMD MxGPU: each SR-IOV VF is a vGPU, no mdev types");

        size_t types = 0, instances = 0, vf_types = 0;
        count_types(d->host, g->bdf, &types, &instances);
        text_line(&ev, "/sys/class/mdev_bus/%s/mdev_supported_types: %zu types", g->bdf, types);
        for (size_t i = 0; i < g->n_vfs; i++)
                count_types(d->host, g->vfs[i], &vf_types, &instances);
        if (g->n_vfs > 0)
                text_line(&ev, "VFs of %s: %zu, offering %zu types", g->bdf, g->n_vfs, vf_types);
        if (instances > 0)
                text_line(&ev, "/sys/bus/mdev/devices: %zu vGPUs on this GPU", instances);

        if (types + vf_types > 0 || instances > 0) {
                if (types + vf_types == 0)
                        return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                                          "%zu vGPUs created; no more types offered", instances);
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "%zu vGPU types offered%s",
                                  types + vf_types, vf_types ? " on its VFs" : "");
        }
        if (g->vendor_id == VGPU_PCI_VENDOR_NVIDIA)
                return mdev_types_nvidia(d, g, &ev);
        return mdev_types_intel(d, g, &ev);
}

int check_gpu_models_mixed(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, models = {};
        size_t n_gpus = 0, n_hosting = 0;
        uint16_t mixed_vendor = 0;

        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (!doctor_is_gpu(g))
                        continue;
                n_gpus++;
                if (!doctor_gpu_driver_hosts_vgpus(g))
                        continue;
                n_hosting++;
                text_line(&ev, "/sys/bus/pci/devices/%s: %04x:%04x, driver %s", g->bdf, g->vendor_id,
                          g->device_id, g->driver);
                /* another model of the same vendor seen before? */
                for (size_t j = 0; j < i; j++) {
                        const struct vgpu_gpu *h = &d->host->gpus[j];
                        if (doctor_is_gpu(h) && doctor_gpu_driver_hosts_vgpus(h) &&
                            h->vendor_id == g->vendor_id && h->device_id != g->device_id && !mixed_vendor)
                                mixed_vendor = g->vendor_id;
                }
        }
        if (n_gpus == 0) {
                text_line(&ev, "/sys/bus/pci/devices: no NVIDIA, AMD or Intel display function");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no GPU");
        }
        if (!mixed_vendor)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "%s",
                                  n_hosting > 1    ? "one GPU model per vendor"
                                  : n_hosting == 1 ? "one GPU hosts vGPUs"
                                                   : "no GPU hosts vGPUs yet (see driver.loaded)");

        /* name the distinct models of that vendor */
        size_t n_models = 0;
        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (!doctor_is_gpu(g) || !doctor_gpu_driver_hosts_vgpus(g) || g->vendor_id != mixed_vendor)
                        continue;
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++) {
                        const struct vgpu_gpu *h = &d->host->gpus[j];
                        seen = doctor_is_gpu(h) && doctor_gpu_driver_hosts_vgpus(h) &&
                               h->vendor_id == mixed_vendor && h->device_id == g->device_id;
                }
                if (seen)
                        continue;
                text_append(&models, "%s%04x:%04x", n_models ? ", " : "", g->vendor_id, g->device_id);
                n_models++;
        }
        if (!text_get(&models))
                return -ENOMEM;
        char vbuf[8];
        return doctor_add(
                d, NULL, VGPU_CHECK_WARN, &ev,
                "Use one board model per host for vGPUs (the vGPU manager supports a single board type per "
                "host in "
                "many releases: see its release notes), or pass the other model through whole with vfio-pci.",
                "%s GPUs of %zu models host vGPUs: %s", doctor_vendor_name(mixed_vendor, vbuf), n_models,
                models.s);
}

int check_nvidia_persistence(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        driver_evidence(&ev, g);
        if (g->vendor_id != VGPU_PCI_VENDOR_NVIDIA)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "not an NVIDIA GPU");
        if (!g->nvml) {
                text_line(&ev, "nvml: no readings (libnvidia-ml.so.1 absent, or NVML did not answer for %s)",
                          g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "no NVML readings");
        }
        int p = g->nvml->persistence_mode;
        text_line(&ev, "nvml: nvmlDeviceGetPersistenceMode: %s",
                  p == 1   ? "1 (on)"
                  : p == 0 ? "0 (off)"
                           : "unsupported");
        if (p < 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL,
                                  "NVML does not report the persistence mode");
        if (p == 1)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "persistence mode on");
        char rem[256];
        snprintf(rem, sizeof(rem),
                 "Turn it on now, and at every boot through NVIDIA's daemon:\n"
                 "  nvidia-smi -i %s -pm 1\n"
                 "  systemctl enable --now nvidia-persistenced",
                 g->bdf);
        return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                          "persistence mode off: the driver tears the GPU down when idle, slowing vGPU "
                          "starts and losing state");
}
