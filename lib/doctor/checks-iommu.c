/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-iommu.c — the IOMMU, without which VFIO assigns nothing: is it on (firmware table and
 * kernel groups), does the command line ask for it as each CPU vendor needs, and can what VFIO
 * will take be handed to it as a whole (libvirt's "group is not viable"): the GPU's own group,
 * or for SR-IOV vGPUs each VF's; an mdev parent's group matters only for whole-GPU pass-through.
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
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "IOMMU on (%s table, %d groups)",
                                  table, groups);
        if (!table && groups > 0)
                /* Groups prove an IOMMU works; only the usual firmware table is missing. */
                return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev,
                                  "Check that the IOMMU in use is the platform's: dmesg | grep -i -e DMAR -e "
                                  "AMD-Vi -e IOMMU",
                                  "IOMMU groups exist but the firmware publishes no DMAR/IVRS table");

        if (!table) {
                text_line(&rem, "Enable the IOMMU in the firmware setup: %s, then boot with it on.",
                          cpu == CPU_INTEL ? "\"Intel VT-d\" (Virtualization Technology for Directed I/O)"
                          : cpu == CPU_AMD ? "\"IOMMU\" / \"AMD-Vi\" (with SVM)"
                                           : "\"VT-d\" (Intel) or \"IOMMU\"/\"AMD-Vi\" (AMD)");
        }
        static const char *const intel_words[] = { "intel_iommu=on", "iommu=pt", NULL };
        static const char *const amd_words[] = { "iommu=pt", NULL };
        if (cpu == CPU_OTHER)
                text_line(&rem, "Turn it on with the kernel command line parameter your platform documents, "
                                "and reboot.");
        else
                cmdline_grub_remedy(&rem, &ev, cpu == CPU_AMD ? amd_words : intel_words);
        if (!text_get(&rem))
                return -ENOMEM;
        if (!table)
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                  "IOMMU off: no DMAR/IVRS table from the firmware (VT-d/AMD-Vi disabled)%s",
                                  groups == 0 ? " and no IOMMU groups" : "");
        return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                          "IOMMU off: the firmware has it (%s table) but the kernel made no IOMMU groups",
                          table);
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
                return doctor_add(
                        d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                        "no DMAR/IVRS table and not an Intel or AMD x86 CPU: no IOMMU parameters to check");

        enum vgpu_check_status status = VGPU_CHECK_PASS;
        const char *words[3] = {};
        size_t n_words = 0;
        _cleanup_text_ struct text summary = {};

        if (cpu == CPU_INTEL) {
                bool set = cmdline_value(cmdline, "intel_iommu", value, sizeof(value));
                bool on = set && strncmp(value, "on", 2) == 0; /* "on", "on,sm_on" */
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
                        text_append(&summary,
                                    "intel_iommu=on missing (the IOMMU is on by the kernel's default)");
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
                text_append(&summary, "%siommu=pt missing (recommended: host devices skip translation)",
                            summary.len ? "; " : "");
                words[n_words++] = "iommu=pt";
        }

        if (status == VGPU_CHECK_PASS)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "%s",
                                  cpu == CPU_INTEL ? "intel_iommu=on and iommu=pt set"
                                                   : "iommu=pt set (the AMD IOMMU is on by default)");
        cmdline_grub_remedy(&rem, &ev, words);
        if (!text_get(&rem) || !text_get(&summary))
                return -ENOMEM;
        return doctor_add(d, NULL, status, &ev, text_get(&rem), "%s", summary.s);
}

/* May `m` share a group with GPU g without making the group unusable for VFIO? */
static bool member_harmless(const struct doctor *d, const struct vgpu_gpu *g,
                            const struct vgpu_group_member *m) {
        if ((m->class_code >> 8) == PCI_CLASS_BRIDGE_PCI)
                return true; /* bridges are never bound by VFIO and never block it */
        if (strncmp(m->bdf, g->bdf, 10) == 0)
                return true; /* "0000:3b:00": a function of the same card (audio, USB-C) */
        const struct vgpu_gpu *mg = vgpu_host_find_gpu(d->host, m->bdf);
        if (mg && streq(mg->physfn, g->bdf))
                return true; /* one of its own VFs */
        /* The kernel counts unbound devices as viable too (vfio_dev_driver_allowed). */
        return !m->driver || streq(m->driver, "vfio-pci") || streq(m->driver, "pci-stub");
}

/* The members of group `id` that keep VFIO from taking `dev` (a GPU or one of its VFs, of the
 * card `g`), as "BDF (driver)" in bad and the commands that hand them to VFIO in rem; the
 * members as evidence. Returns how many, or -1 when the group is unknown. */
static int group_blockers(const struct doctor *d, const struct vgpu_gpu *g, const char *dev, int id,
                          struct text *ev, struct text *bad, struct text *rem) {
        const struct vgpu_iommu_group *grp = vgpu_host_find_group(d->host, id);
        if (!grp) {
                text_line(ev, "/sys/kernel/iommu_groups/%d/devices: not read", id);
                return -1;
        }
        int n_bad = 0;
        for (size_t i = 0; i < grp->n_members; i++) {
                const struct vgpu_group_member *m = &grp->members[i];
                text_line(ev, "/sys/kernel/iommu_groups/%d/devices/%s: class 0x%06x, driver %s", grp->id,
                          m->bdf, m->class_code, m->driver ? m->driver : "(none)");
                if (streq(m->bdf, dev))
                        continue;
                /* a VF's group holding its PF bound to the host driver: the PF has no ACS */
                bool pf_bound = !streq(dev, g->bdf) && streq(m->bdf, g->bdf);
                if (!pf_bound && member_harmless(d, g, m))
                        continue;
                text_append(bad, "%s%s (%s)", bad->len ? ", " : "", m->bdf, m->driver);
                if (!pf_bound) {
                        text_line(rem, "  echo %s > /sys/bus/pci/devices/%s/driver/unbind", m->bdf, m->bdf);
                        text_line(rem, "  echo vfio-pci > /sys/bus/pci/devices/%s/driver_override", m->bdf);
                        text_line(rem, "  echo %s > /sys/bus/pci/drivers_probe", m->bdf);
                }
                n_bad++;
        }
        return n_bad;
}

static const char group_remedy_head[] = "Give the device an IOMMU group of its own: move the card to a slot "
                                        "on a CPU root port, or enable ACS "
                                        "(\"ACS Control\") in the firmware setup.";

/*
 * SR-IOV vGPUs are VFs handed to VFIO one by one: each VF's group is what must be viable (a
 * PF without ACS puts its VFs into its own group, with itself bound to the host driver).
 */
static int check_vf_groups(struct doctor *d, const struct vgpu_gpu *g, struct text *ev,
                           const char *pf_shared) {
        _cleanup_text_ struct text bad = {}, rem = {}, groups = {};
        size_t n_vfs_bad = 0;
        for (size_t i = 0; i < g->n_vfs; i++) {
                const struct vgpu_gpu *vf = vgpu_host_find_gpu(d->host, g->vfs[i]);
                if (!vf || vf->iommu_group < 0) {
                        text_line(ev, "/sys/bus/pci/devices/%s/iommu_group: absent", g->vfs[i]);
                        continue;
                }
                /* each group once: VFs without ACS between them share one */
                bool seen = false;
                size_t in_group = 0;
                for (size_t j = 0; j < g->n_vfs; j++) {
                        const struct vgpu_gpu *o = vgpu_host_find_gpu(d->host, g->vfs[j]);
                        if (o && o->iommu_group == vf->iommu_group) {
                                seen = seen || j < i;
                                in_group++;
                        }
                }
                if (seen)
                        continue;
                /* the PF's group is in the evidence already */
                _cleanup_text_ struct text group_bad = {}, quiet = {};
                int n = group_blockers(d, g, vf->bdf, vf->iommu_group,
                                       vf->iommu_group == g->iommu_group ? &quiet : ev, &group_bad, &rem);
                if (group_bad.oom)
                        return -ENOMEM;
                if (n <= 0)
                        continue;
                text_append(&groups, "%sgroup %d (%zu VF%s)", groups.len ? ", " : "", vf->iommu_group,
                            in_group, in_group > 1 ? "s" : "");
                text_append(&bad, "%s%s", bad.len ? ", " : "", group_bad.s ? group_bad.s : "");
                n_vfs_bad += in_group;
        }
        if (!text_get(&bad) || !text_get(&rem) || !text_get(&groups))
                return -ENOMEM;
        if (n_vfs_bad == 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, ev, NULL,
                                  "the IOMMU groups of its %zu VFs are viable for VFIO%s%s%s", g->n_vfs,
                                  pf_shared[0] ? " (the PF's own group is shared with " : "", pf_shared,
                                  pf_shared[0] ? ": that matters only for passing the whole GPU through)"
                                               : "");
        _cleanup_text_ struct text full = {};
        text_line(&full,
                  "%s A VF group that holds the PF itself means the PF has no ACS isolation between its "
                  "functions: the firmware's ACS setting (or a newer board firmware) decides it.",
                  group_remedy_head);
        if (rem.len)
                text_line(&full, "Or hand the other devices to VFIO, which takes them from the host:\n%s",
                          rem.s);
        if (!text_get(&full))
                return -ENOMEM;
        return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, ev, text_get(&full),
                          "%zu of %zu VFs are in IOMMU groups VFIO cannot take: %s, shared with %s",
                          n_vfs_bad, g->n_vfs, groups.s, bad.s);
}

int check_iommu_group_viable(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {}, bad = {}, rem = {};
        if (g->iommu_group < 0) {
                text_line(&ev, "/sys/bus/pci/devices/%s/iommu_group: absent", g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL,
                                  "no IOMMU group (the IOMMU is off: see iommu.enabled)");
        }
        int n_bad = group_blockers(d, g, g->bdf, g->iommu_group, &ev, &bad, &rem);
        if (n_bad < 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "members of IOMMU group %d unknown",
                                  g->iommu_group);
        if (!text_get(&bad))
                return -ENOMEM;
        if (g->n_vfs > 0)
                return check_vf_groups(d, g, &ev, bad.s ? bad.s : "");
        if (n_bad == 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                                  "IOMMU group %d holds only this card's functions%s", g->iommu_group,
                                  ev.len && strchr(ev.s, '\n') ? " and bridges or VFIO-bound devices" : "");
        /* mdev vGPUs get IOMMU groups of their own from VFIO; the card's group is used only to
         * pass the whole GPU through */
        if (g->mdev_parent)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                                  "IOMMU group %d is shared with %s: no matter for its mdev vGPUs (each has "
                                  "a group of its "
                                  "own), only for passing the whole GPU through",
                                  g->iommu_group, bad.s);

        _cleanup_text_ struct text full = {};
        text_line(&full,
                  "%s Or hand the other member%s to VFIO, which takes %s from the host:", group_remedy_head,
                  n_bad > 1 ? "s" : "", n_bad > 1 ? "them" : "it");
        if (!text_get(&rem))
                return -ENOMEM;
        text_line(&full, "%s", rem.s);
        if (!text_get(&full))
                return -ENOMEM;
        return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, text_get(&full),
                          "IOMMU group %d is not viable: %s share%s it", g->iommu_group, bad.s,
                          n_bad > 1 ? "" : "s");
}
