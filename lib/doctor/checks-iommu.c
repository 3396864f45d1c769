/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-iommu.c — the IOMMU, without which VFIO assigns nothing: is it on (firmware table and
 * kernel groups), does the command line ask for it as each CPU vendor needs, and can each GPU's
 * group be handed to VFIO as a whole (libvirt's "group is not viable").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "basic/root.h"
#include "doctor-internal.h"

/* DMAR: Intel VT-d; IVRS: AMD-Vi. VIOT (virtio-iommu) and IORT (Arm SMMU) describe the same
 * thing on VMs and Arm servers, so they count too. */
static const char *const iommu_tables[] = { "DMAR", "IVRS", "VIOT", "IORT" };

enum cpu_vendor { CPU_OTHER, CPU_INTEL, CPU_AMD };

/* The firmware's IOMMU table, or NULL when it publishes none of iommu_tables. */
static const char *firmware_iommu_table(void) {
        for (size_t i = 0; i < ELEMENTSOF(iommu_tables); i++) {
                char p[64];
                snprintf(p, sizeof(p), "/sys/firmware/acpi/tables/%s", iommu_tables[i]);
                if (root_access(p, F_OK) == 0)
                        return iommu_tables[i];
        }
        return NULL;
}

static void table_evidence(struct text *ev, const char *table) {
        if (table)
                text_line(ev, "/sys/firmware/acpi/tables/%s: present", table);
        else
                text_line(ev, "/sys/firmware/acpi/tables/DMAR, IVRS: absent");
}

/* Out of memory reading /proc/cpuinfo marks ev so, and the check fails with -ENOMEM rather than
 * judge a CPU it could not see. */
static enum cpu_vendor cpu_vendor(struct text *ev) {
        char v[64];
        if (doctor_cpu_vendor(v, sizeof(v)) == -ENOMEM && ev)
                ev->oom = true;
        if (ev)
                text_line(ev, "/proc/cpuinfo: vendor_id %s", v[0] ? v : "(absent)");
        if (streq(v, "GenuineIntel"))
                return CPU_INTEL;
        if (streq(v, "AuthenticAMD") || streq(v, "HygonGenuine"))
                return CPU_AMD;
        return CPU_OTHER;
}

/* Whose IOMMU parameters the kernel takes: the firmware's table says it directly (DMAR: VT-d,
 * which intel_iommu= drives whatever the CPU's vendor_id, e.g. Zhaoxin's; IVRS: AMD-Vi); without
 * one the CPU vendor is the best guess. The cpuinfo line stays in the evidence either way. */
static enum cpu_vendor iommu_vendor(const char *table, struct text *ev) {
        enum cpu_vendor cpu = cpu_vendor(ev);
        if (table && streq(table, "DMAR"))
                return CPU_INTEL;
        if (table && streq(table, "IVRS"))
                return CPU_AMD;
        return cpu;
}

static void groups_evidence(struct text *ev, int groups) {
        if (groups > 0)
                text_line(ev, "/sys/kernel/iommu_groups: %d groups", groups);
        else
                text_line(ev, "/sys/kernel/iommu_groups: empty or absent");
}

int check_iommu_enabled(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, rem = {};
        const char *table = firmware_iommu_table();
        table_evidence(&ev, table);
        int groups = doctor_count_iommu_groups();
        groups_evidence(&ev, groups);
        enum cpu_vendor cpu = iommu_vendor(table, &ev);

        if (table && groups > 0)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "IOMMU on (%s table, %d groups)", table, groups);
        if (!table && groups > 0)
                /* Groups prove an IOMMU works; only the usual firmware table is missing. */
                return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev,
                                  "Check that the IOMMU in use is the platform's: dmesg | grep -i -e DMAR -e AMD-Vi -e IOMMU",
                                  "IOMMU groups exist but the firmware publishes no DMAR/IVRS table");

        if (!table) {
                text_line(&rem, "Enable the IOMMU in the firmware setup: %s, then boot with it on.",
                          cpu == CPU_INTEL ? "\"Intel VT-d\" (Virtualization Technology for Directed I/O)" :
                          cpu == CPU_AMD ? "\"IOMMU\" / \"AMD-Vi\" (with SVM)" :
                          "\"VT-d\" (Intel) or \"IOMMU\"/\"AMD-Vi\" (AMD)");
        }
        static const char *const intel_words[] = { "intel_iommu=on", "iommu=pt", NULL };
        static const char *const amd_words[] = { "iommu=pt", NULL };
        if (cpu == CPU_OTHER)
                text_line(&rem, "Turn it on with the kernel command line parameter your platform documents, and reboot.");
        else
                cmdline_grub_remedy(&rem, &ev, cpu == CPU_AMD ? amd_words : intel_words);
        if (!text_get(&rem))
                return -ENOMEM;
        if (!table)
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                  "IOMMU off: no DMAR/IVRS table from the firmware (VT-d/AMD-Vi disabled)%s",
                                  groups == 0 ? " and no IOMMU groups" : "");
        return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                          "IOMMU off: the firmware has it (%s table) but the kernel made no IOMMU groups", table);
}

int check_iommu_cmdline(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, rem = {};
        const char *table = firmware_iommu_table();
        table_evidence(&ev, table);
        enum cpu_vendor cpu = iommu_vendor(table, &ev);
        char cmdline[4096], value[64];
        cmdline_read(cmdline, sizeof(cmdline));
        text_line(&ev, "/proc/cmdline: %s", cmdline);
        int groups = doctor_count_iommu_groups();
        groups_evidence(&ev, groups);

        if (cpu == CPU_OTHER)
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no DMAR/IVRS table and not an Intel or AMD x86 CPU: no IOMMU parameters to check");

        enum vgpu_check_status status = VGPU_CHECK_PASS;
        const char *words[3] = {};
        size_t n_words = 0;
        _cleanup_text_ struct text summary = {};

        if (cpu == CPU_INTEL) {
                bool set = cmdline_value(cmdline, "intel_iommu", value, sizeof(value));
                bool on = set && strncmp(value, "on", 2) == 0;      /* "on", "on,sm_on" */
                if (set && strncmp(value, "off", 3) == 0) {
                        status = VGPU_CHECK_FAIL;
                        text_append(&summary, "intel_iommu=off turns the IOMMU off");
                        words[n_words++] = "intel_iommu=on";
                } else if (!on && groups == 0) {
                        status = VGPU_CHECK_FAIL;
                        text_append(&summary, "intel_iommu=on missing and the IOMMU is off");
                        words[n_words++] = "intel_iommu=on";
                } else if (!on) {
                        /* on by default in this kernel (CONFIG_INTEL_IOMMU_DEFAULT_ON): fine until
                         * the kernel's default changes; say it explicitly */
                        status = VGPU_CHECK_WARN;
                        text_append(&summary, "intel_iommu=on missing (the IOMMU is on by the kernel's default)");
                        words[n_words++] = "intel_iommu=on";
                }
        } else if (cmdline_value(cmdline, "amd_iommu", value, sizeof(value)) && streq(value, "off")) {
                status = VGPU_CHECK_FAIL;
                text_append(&summary, "amd_iommu=off turns the IOMMU off");
                words[n_words++] = "amd_iommu=on";
        }

        /* Without pt every host DMA is translated too, which costs the host's own I/O. */
        bool pt = (cmdline_value(cmdline, "iommu", value, sizeof(value)) && streq(value, "pt")) ||
                  cmdline_has(cmdline, "iommu.passthrough=1");
        if (!pt) {
                if (status == VGPU_CHECK_PASS)
                        status = VGPU_CHECK_WARN;
                text_append(&summary, "%siommu=pt missing (recommended: host devices skip translation)", summary.len ? "; " : "");
                words[n_words++] = "iommu=pt";
        }

        if (status == VGPU_CHECK_PASS)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "%s",
                                  cpu == CPU_INTEL ? "intel_iommu=on and iommu=pt set" :
                                  "iommu=pt set (the AMD IOMMU is on by default)");
        cmdline_grub_remedy(&rem, &ev, words);
        if (!text_get(&rem) || !text_get(&summary))
                return -ENOMEM;
        return doctor_add(d, NULL, status, &ev, text_get(&rem), "%s", summary.s);
}

/* May `m` share a group with GPU g without making the group unusable for VFIO? */
static bool member_harmless(const struct doctor *d, const struct vgpu_gpu *g, const struct vgpu_group_member *m) {
        if ((m->class_code >> 8) == PCI_CLASS_BRIDGE_PCI)
                return true;    /* bridges are never bound by VFIO and never block it */
        if (strncmp(m->bdf, g->bdf, 10) == 0)
                return true;    /* "0000:3b:00": a function of the same card (audio, USB-C) */
        const struct vgpu_gpu *mg = vgpu_host_find_gpu(d->host, m->bdf);
        if (mg && streq(mg->physfn, g->bdf))
                return true;    /* one of its own VFs */
        /* The kernel counts unbound devices as viable too (vfio_dev_driver_allowed). */
        return !m->driver || streq(m->driver, "vfio-pci") || streq(m->driver, "pci-stub");
}

int check_iommu_group_viable(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {}, bad = {}, rem = {};
        if (g->iommu_group < 0) {
                text_line(&ev, "/sys/bus/pci/devices/%s/iommu_group: absent", g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "no IOMMU group (the IOMMU is off: see iommu.enabled)");
        }
        const struct vgpu_iommu_group *grp = vgpu_host_find_group(d->host, g->iommu_group);
        if (!grp) {
                text_line(&ev, "/sys/kernel/iommu_groups/%d/devices: not read", g->iommu_group);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "members of IOMMU group %d unknown", g->iommu_group);
        }

        size_t n_bad = 0;
        for (size_t i = 0; i < grp->n_members; i++) {
                const struct vgpu_group_member *m = &grp->members[i];
                text_line(&ev, "/sys/kernel/iommu_groups/%d/devices/%s: class 0x%06x, driver %s", grp->id, m->bdf,
                          m->class_code, m->driver ? m->driver : "(none)");
                if (streq(m->bdf, g->bdf) || member_harmless(d, g, m))
                        continue;
                text_append(&bad, "%s%s (%s)", n_bad ? ", " : "", m->bdf, m->driver);
                text_line(&rem, "  echo %s > /sys/bus/pci/devices/%s/driver/unbind", m->bdf, m->bdf);
                text_line(&rem, "  echo vfio-pci > /sys/bus/pci/devices/%s/driver_override", m->bdf);
                text_line(&rem, "  echo %s > /sys/bus/pci/drivers_probe", m->bdf);
                n_bad++;
        }
        if (n_bad == 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "IOMMU group %d holds only this card's functions%s",
                                  grp->id, grp->n_members > 1 ? " and bridges or VFIO-bound devices" : "");

        _cleanup_text_ struct text full = {};
        text_line(&full, "Give the GPU an IOMMU group of its own: move it to a slot on a CPU root port, or enable ACS "
                  "(\"ACS Control\") in the firmware setup. Or hand the other member%s to VFIO, which takes %s from the host:",
                  n_bad > 1 ? "s" : "", n_bad > 1 ? "them" : "it");
        if (!text_get(&rem))
                return -ENOMEM;
        text_line(&full, "%s", rem.s);
        if (!text_get(&full) || !text_get(&bad))
                return -ENOMEM;
        return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, text_get(&full),
                          "IOMMU group %d is not viable: %s share%s it", grp->id, bad.s, n_bad > 1 ? "" : "s");
}
