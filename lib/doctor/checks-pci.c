/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-pci.c — what the firmware did to each GPU's PCI function: SR-IOV exposed or hidden,
 * BARs placed (and above 4 GiB, where big BARs belong), the PCIe link trained at the card's
 * full width (and speed, under load), and the slot's power limit against what the card draws.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/root.h"

#include "doctor-internal.h"

#define PCI_EXT_CAP_ID_SRIOV 0x10
#define SIZE_4G              (UINT64_C(1) << 32)
#define LARGE_BAR            (UINT64_C(256) << 20)

int check_sriov_capable(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        char rem[512];

        if (g->sriov)
                text_line(&ev, "/sys/bus/pci/devices/%s/sriov_totalvfs: %u", g->bdf, g->total_vfs);
        else
                text_line(&ev, "/sys/bus/pci/devices/%s/sriov_totalvfs: absent", g->bdf);
        if (g->sriov && g->total_vfs > 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                                  "SR-IOV: %u VFs possible, %u enabled", g->total_vfs, g->num_vfs);

        int cap = doctor_pci_has_ext_cap(d, g->bdf, PCI_EXT_CAP_ID_SRIOV);
        if (cap < 0)
                text_line(&ev, "/sys/bus/pci/devices/%s/config: unreadable%s", g->bdf, doctor_pci_why(d));
        else
                text_line(&ev, "/sys/bus/pci/devices/%s/config: SR-IOV capability (0x0010) %s", g->bdf,
                          cap ? "present" : "absent");
        if (cap <= 0 && !g->sriov)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "%s: not needed for mdev-based vGPU",
                                  cap < 0 ? "SR-IOV capability unknown (config space unreadable)"
                                          : "no SR-IOV capability");

        snprintf(rem, sizeof(rem),
                 "Enable \"SR-IOV Support\" and \"ARI\" (Alternative Routing-ID) in the firmware setup, then "
                 "reboot;\n"
                 "check with: cat /sys/bus/pci/devices/%s/sriov_totalvfs",
                 g->bdf);
        return doctor_add(
                d, g->bdf, VGPU_CHECK_FAIL, &ev, rem,
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
                text_append(ev, "%s %s 0x%" PRIx64 " %s %s%s", i ? ";" : "", name, b->start,
                            bar_size(b->size, size), b->is_64bit ? "64-bit" : "32-bit",
                            b->prefetchable ? " prefetchable" : "");
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
                        text_append(&bad, "%sBAR%d (%s)", unassigned ? ", " : "", b->index,
                                    bar_size(b->size, size));
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

        static const char rem[] = "Enable \"Above 4G Decoding\" (also \"MMIO above 4G\" / \"Resizable BAR\" "
                                  "/ \"Large BAR\") in the firmware setup, "
                                  "then reboot;\nif the kernel still leaves a BAR unassigned, add "
                                  "pci=realloc to the kernel command line.";
        if (unassigned > 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem,
                                  "%s not assigned: the firmware could not place the 64-bit BAR (Above 4G "
                                  "Decoding off?)",
                                  bad.s);
        if (large > 0 && large_low == large)
                return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                                  "the large 64-bit BARs sit below 4 GiB: Above 4G Decoding looks off, the "
                                  "card's memory window is squeezed");
        return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL, "all BARs assigned%s",
                          large > 0 ? ", large BARs above 4 GiB" : "");
}

/* GPUs lower their link speed when idle (NVIDIA's drop to 2.5 GT/s on bare metal), so a slow
 * link counts only under load: at or above this utilization. */
#define BUSY_PERCENT 10

/* max_link_speed of a PCI function in GT/s, 0 unknown. */
static double max_link_speed(const char *bdf) {
        char p[128], buf[64];
        snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/max_link_speed", bdf);
        if (root_read(p, buf, sizeof(buf)) < 0)
                return 0;
        return strtod(buf, NULL);
}

int check_pcie_link(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        const struct vgpu_link *l = &g->link;
        /* 0 is "unknown" in the snapshot: no PCIe (integrated GPUs), or a link that is down */
        if (l->width_max <= 0 || l->speed_max <= 0 || l->width_current <= 0 || l->speed_current <= 0) {
                text_line(&ev, "/sys/bus/pci/devices/%s/{current,max}_link_{width,speed}: absent or unknown",
                          g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "PCIe link unknown");
        }
        text_line(&ev, "/sys/bus/pci/devices/%s/current_link_width: %d, max_link_width: %d", g->bdf,
                  l->width_current, l->width_max);
        text_line(&ev, "/sys/bus/pci/devices/%s/current_link_speed: %g GT/s, max_link_speed: %g GT/s", g->bdf,
                  l->speed_current, l->speed_max);
        char up[32] = "";
        double slot_speed = doctor_pci_upstream(g->bdf, up, sizeof(up)) ? max_link_speed(up) : 0;
        if (slot_speed > 0)
                text_line(&ev, "/sys/bus/pci/devices/%s/max_link_speed (the port above): %g GT/s", up,
                          slot_speed);
        int util = g->nvml ? g->nvml->utilization_gpu : -1;
        if (util >= 0)
                text_line(&ev, "nvml: utilization %d%%", util);

        bool narrow = l->width_current < l->width_max, slow = l->speed_current < l->speed_max;
        bool slot_slower = slot_speed > 0 && slot_speed < l->speed_max, busy = util >= BUSY_PERCENT;
        if (!narrow && !slow)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                                  "PCIe link x%d at %g GT/s, the card's maximum", l->width_current,
                                  l->speed_current);
        if (!narrow && !slot_slower && !busy)
                return doctor_add(
                        d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                        "PCIe link x%d at %g GT/s while %s: GPUs lower the speed when idle (up to %g GT/s)",
                        l->width_current, l->speed_current, util >= 0 ? "idle" : "its load is unknown",
                        l->speed_max);

        char rem[768];
        if (!narrow && slot_slower) {
                snprintf(rem, sizeof(rem),
                         "The slot (port %s) runs at most %g GT/s, the card %g GT/s: move the card to a slot "
                         "of its "
                         "generation (see the board manual), or set that slot's PCIe generation to Auto in "
                         "the firmware "
                         "setup if it was lowered.",
                         up, slot_speed, l->speed_max);
                return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                                  "PCIe slot slower than the card: %g of %g GT/s", slot_speed, l->speed_max);
        }
        snprintf(rem, sizeof(rem),
                 "%s"
                 "Compare under load: lspci -vv -s %s | grep -e LnkCap: -e LnkSta:",
                 narrow ? "Seat the card in a slot wired for its full width (check the board manual for the "
                          "slot's "
                          "electrical width, and the riser), and set the slot's link to Auto/its generation "
                          "in the firmware setup.\n"
                        : "Set the slot's PCIe speed to Auto (or the card's generation) in the firmware "
                          "setup; check the riser.\n",
                 g->bdf);
        if (narrow)
                return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                                  "PCIe link degraded: x%d of x%d, %g of %g GT/s", l->width_current,
                                  l->width_max, l->speed_current, l->speed_max);
        return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                          "PCIe link slow under load: %g of %g GT/s at %d%% utilization", l->speed_current,
                          l->speed_max, util);
}

/* What a card may draw from a slot (PCIe CEM): 75 W from an x16 graphics slot, 25 W else; its
 * auxiliary connectors give the rest. */
#define SLOT_X16_MW   75000
#define SLOT_OTHER_MW 25000

int check_pcie_slot_power(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        if (g->link.width_max <= 0) {
                text_line(&ev, "/sys/bus/pci/devices/%s/max_link_width: absent (no PCIe slot)", g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "not in a PCIe slot");
        }
        unsigned captured = 0, slot = 0;
        char up[32] = "";
        int r = doctor_pci_slot_power(d, g->bdf, false, &captured);
        text_line(
                &ev,
                "/sys/bus/pci/devices/%s/config: Device Capabilities, captured slot power limit %s%s%s%.1f W",
                g->bdf, r < 0 ? "unreadable" : "", r < 0 ? doctor_pci_why(d) : "", r < 0 ? ", " : "",
                captured / 1000.0);
        if (doctor_pci_upstream(g->bdf, up, sizeof(up))) {
                int s = doctor_pci_slot_power(d, up, true, &slot);
                text_line(&ev, "/sys/bus/pci/devices/%s/config: Slot Capabilities, slot power limit %s", up,
                          s < 0    ? "unreadable"
                          : s == 0 ? "none (no slot implemented, or 0 W)"
                                   : "");
                if (s < 0)
                        text_append(&ev, "%s", doctor_pci_why(d));
                if (s > 0)
                        text_append(&ev, "%.1f W", slot / 1000.0);
        }
        /* the limit the card obeys is the one it captured; the port's tells us when it did not */
        unsigned limit = captured ? captured : slot;
        if (limit == 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL, "slot power limit not reported");

        unsigned slot_max = g->link.width_max >= 16 ? SLOT_X16_MW : SLOT_OTHER_MW, need = slot_max;
        const struct vgpu_nvml_gpu *n = g->nvml;
        if (n && n->power_limit_mw > 0) {
                text_line(&ev, "nvml: power limit %.1f W", n->power_limit_mw / 1000.0);
                if ((unsigned) n->power_limit_mw < need)
                        need = (unsigned) n->power_limit_mw;
        }
        if (limit >= need)
                return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                                  "slot power limit %.1f W, the card needs %.1f W from the slot",
                                  limit / 1000.0, need / 1000.0);
        char rem[640];
        snprintf(rem, sizeof(rem),
                 "Raise the slot's power limit to %.0f W: in the BMC / firmware setup, the PCIe slot power "
                 "setting of "
                 "the slot at %s (\"Slot Power Limit\", \"PCIe Slot Power\", or the GPU/\"high power\" slot "
                 "profile of "
                 "the vendor's BMC), or move the card to a slot rated for it; power-cycle after the change.",
                 slot_max / 1000.0, up[0] ? up : g->bdf);
        return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                          "slot power limit %.1f W, below the %.1f W the card draws from the slot: it will "
                          "hold its clocks down",
                          limit / 1000.0, need / 1000.0);
}
