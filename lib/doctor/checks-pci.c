/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-pci.c — what the firmware did to each GPU's PCI function: SR-IOV exposed or hidden,
 * BARs placed (and above 4 GiB, where big BARs belong), and the PCIe link trained at the
 * card's full width and speed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "doctor-internal.h"

#define PCI_EXT_CAP_ID_SRIOV 0x10
#define SIZE_4G (UINT64_C(1) << 32)
#define LARGE_BAR (UINT64_C(256) << 20)

int check_sriov_capable(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        char rem[512];

        if (g->sriov)
                text_line(&ev, "/sys/bus/pci/devices/%s/sriov_totalvfs: %u", g->bdf, g->total_vfs);
        else
                text_line(&ev, "/sys/bus/pci/devices/%s/sriov_totalvfs: absent", g->bdf);
        if (g->sriov && g->total_vfs > 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "SR-IOV: %u VFs possible, %u enabled", g->total_vfs,
                                  g->num_vfs);

        int cap = doctor_pci_has_ext_cap(d, g->bdf, PCI_EXT_CAP_ID_SRIOV);
        if (cap < 0)
                text_line(&ev, "/sys/bus/pci/devices/%s/config: unreadable", g->bdf);
        else
                text_line(&ev, "/sys/bus/pci/devices/%s/config: SR-IOV capability (0x0010) %s", g->bdf,
                          cap ? "present" : "absent");
        if (cap <= 0 && !g->sriov)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL,
                                  "%s: not needed for mdev-based vGPU",
                                  cap < 0 ? "SR-IOV capability unknown (config space unreadable)" :
                                  "no SR-IOV capability");

        snprintf(rem, sizeof(rem),
                 "Enable \"SR-IOV Support\" and \"ARI\" (Alternative Routing-ID) in the firmware setup, then reboot;\n"
                 "check with: cat /sys/bus/pci/devices/%s/sriov_totalvfs", g->bdf);
        return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem,
                          "the card has SR-IOV but the kernel exposes %s: SR-IOV or ARI is disabled in the firmware",
                          g->sriov ? "0 VFs" : "no sriov_totalvfs");
}

/* "16 MiB", "32 GiB", "128 KiB": BAR sizes are powers of two. */
static const char *bar_size(uint64_t size, char buf[static 32]) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        size_t u = 0;
        while (size >= 1024 && size % 1024 == 0 && u + 1 < ELEMENTSOF(units)) {
                size /= 1024;
                u++;
        }
        snprintf(buf, 32, "%" PRIu64 " %s", size, units[u]);
        return buf;
}

static void bar_evidence(struct text *ev, const struct vgpu_gpu *g) {
        char size[32];
        text_line(ev, "/sys/bus/pci/devices/%s/resource:", g->bdf);
        for (size_t i = 0; i < g->n_bars; i++) {
                const struct vgpu_bar *b = &g->bars[i];
                char name[8] = "ROM";
                if (b->index != 6)
                        snprintf(name, sizeof(name), "BAR%d", b->index);
                text_append(ev, "%s %s 0x%" PRIx64 " %s %s%s", i ? ";" : "", name, b->start, bar_size(b->size, size),
                            b->is_64bit ? "64-bit" : "32-bit", b->prefetchable ? " prefetchable" : "");
        }
        if (g->n_bars == 0)
                text_append(ev, " no memory BARs");
}

int check_bar_above4g(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {}, bad = {};
        char size[32];
        bar_evidence(&ev, g);

        size_t unassigned = 0, large = 0, large_low = 0;
        for (size_t i = 0; i < g->n_bars; i++) {
                const struct vgpu_bar *b = &g->bars[i];
                if (b->is_64bit && b->start == 0 && b->index != 6) {
                        text_append(&bad, "%sBAR%d (%s)", unassigned ? ", " : "", b->index, bar_size(b->size, size));
                        unassigned++;
                }
                if (b->is_64bit && b->prefetchable && b->size >= LARGE_BAR && b->start != 0) {
                        large++;
                        if (b->start + b->size <= SIZE_4G)
                                large_low++;
                }
        }
        if (!text_get(&bad))
                return -ENOMEM;

        static const char rem[] =
                "Enable \"Above 4G Decoding\" (also \"MMIO above 4G\" / \"Resizable BAR\" / \"Large BAR\") in the firmware setup, "
                "then reboot;\nif the kernel still leaves a BAR unassigned, add pci=realloc to the kernel command line.";
        if (unassigned > 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem,
                                  "%s not assigned: the firmware could not place the 64-bit BAR (Above 4G Decoding off?)", bad.s);
        if (large > 0 && large_low == large)
                return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                                  "the large 64-bit BARs sit below 4 GiB: Above 4G Decoding looks off, the card's memory window is squeezed");
        return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "all BARs assigned%s",
                          large > 0 ? ", large BARs above 4 GiB" : "");
}

int check_pcie_link(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        const struct vgpu_link *l = &g->link;
        /* 0 is "unknown" in the snapshot: no PCIe (integrated GPUs), or a link that is down */
        if (l->width_max <= 0 || l->speed_max <= 0 || l->width_current <= 0 || l->speed_current <= 0) {
                text_line(&ev, "/sys/bus/pci/devices/%s/{current,max}_link_{width,speed}: absent or unknown", g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "PCIe link unknown");
        }
        text_line(&ev, "/sys/bus/pci/devices/%s/current_link_width: %d, max_link_width: %d", g->bdf, l->width_current,
                  l->width_max);
        text_line(&ev, "/sys/bus/pci/devices/%s/current_link_speed: %g GT/s, max_link_speed: %g GT/s", g->bdf,
                  l->speed_current, l->speed_max);

        bool narrow = l->width_current < l->width_max, slow = l->speed_current < l->speed_max;
        if (!narrow && !slow)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "PCIe link x%d at %g GT/s, the card's maximum",
                                  l->width_current, l->speed_current);

        char rem[768];
        snprintf(rem, sizeof(rem),
                 "%s"
                 "Compare under load (GPUs lower the link speed when idle): lspci -vv -s %s | grep -e LnkCap: -e LnkSta:",
                 narrow ? "Seat the card in a slot wired for its full width (check the board manual for the slot's "
                          "electrical width, and the riser), and set the slot's link to Auto/its generation in the firmware setup.\n" :
                          "Set the slot's PCIe speed to Auto (or the card's generation) in the firmware setup; check the riser.\n",
                 g->bdf);
        return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem, "PCIe link degraded: x%d of x%d, %g of %g GT/s",
                          l->width_current, l->width_max, l->speed_current, l->speed_max);
}
