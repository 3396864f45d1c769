/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci-config.c — config-space capabilities for the checks, read through libpci from the same
 * sysfs `config` files lspci reads (under VGPU_ROOT, so fixtures carry a config blob).
 *
 * The kernel hides what firmware disabled: with SR-IOV off in the BIOS there is no
 * sriov_totalvfs, yet the capability is still in config space. Only config space tells
 * "this card could, the firmware won't" apart from "this card can't".
 *
 * libpci is loaded on the doctor's first config-space read (basic/pci-access.h); where it is not
 * installed those reads fail with -EOPNOTSUPP and doctor_pci_why() names it for the evidence.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "basic/pci-access.h"
#include "basic/root.h"
#include "doctor-internal.h"

/* Open libpci on <root>/sys/bus/pci once per doctor run. */
static struct pci_access *pci_open(struct doctor *d) {
        if (d->pacc || d->pacc_failed)
                return d->pacc;

        struct vgpu_error err = {};
        const struct libpci_dl *pci = libpci(&err);
        if (!pci) {
                snprintf(d->pci_why, sizeof(d->pci_why), ": %s", err.message);
                d->pacc_failed = true;
                return NULL;
        }
        char sysfs[4096];
        if (root_path(sysfs, sizeof(sysfs), "/sys/bus/pci") < 0) {
                d->pacc_failed = true;
                return NULL;
        }
        struct pci_access *volatile pacc = pci_access_new_quiet(pci);
        if (!pacc) {
                d->pacc_failed = true;
                return NULL;
        }
        if (setjmp(pci_error_jump)) {
                pci->pci_cleanup(pacc);
                d->pacc_failed = true;
                return NULL;
        }
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pci->pci_set_param(pacc, (char *) "sysfs.path", sysfs);
        pci->pci_init(pacc);
        d->pci = pci;
        d->pacc = pacc;
        return pacc;
}

void doctor_pci_done(struct doctor *d) {
        if (d->pacc)
                d->pci->pci_cleanup(d->pacc);
        d->pacc = NULL;
}

const char *doctor_pci_why(const struct doctor *d) {
        return d->pci_why;
}

/* Run call on the device at bdf once fill's parts of its config space are read: call's result, or
 * -EINVAL (not a BDF), -ENOENT (no config file), -EIO (libpci failed), -ENOMEM. The setjmp is
 * here, in a frame that stays alive while call runs, so libpci's errors in call land here too
 * (pci-access.h); a helper that set it and returned would leave a dead jump target. */
static int with_pci_dev(struct doctor *d, const char *bdf, int fill,
                        int (*call)(const struct libpci_dl *pci, struct pci_dev *pdev, void *userdata),
                        void *userdata) {
        unsigned dom, bus, dev, fn;
        if (sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) != 4)
                return -EINVAL;

        /* libpci reads 0xff.. for a missing file and would chase garbage capability pointers. */
        char path[128];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
        if (root_access(path, R_OK) < 0)
                return -ENOENT;

        struct pci_access *pacc = pci_open(d);
        if (!pacc)
                return d->pci_why[0] ? -EOPNOTSUPP : -EIO;

        const struct libpci_dl *pci = d->pci;
        struct pci_dev *volatile pdev = NULL;
        if (setjmp(pci_error_jump)) {
                if (pdev)
                        pci->pci_free_dev(pdev);
                return -EIO;
        }
        pdev = pci->pci_get_dev(pacc, (int) dom, (int) bus, (int) dev, (int) fn);
        if (!pdev)
                return -ENOMEM;
        pci->pci_fill_info(pdev, fill);
        int r = call(pci, pdev, userdata);
        pci->pci_free_dev(pdev);
        return r;
}

static int has_ext_cap(const struct libpci_dl *pci, struct pci_dev *pdev, void *userdata) {
        const unsigned *id = userdata;
        return pci->pci_find_cap(pdev, *id, PCI_CAP_EXTENDED) != NULL;
}

int doctor_pci_has_ext_cap(struct doctor *d, const char *bdf, unsigned id) {
        return with_pci_dev(d, bdf, PCI_FILL_CAPS | PCI_FILL_EXT_CAPS, has_ext_cap, &id);
}

/* Slot Power Limit Value and Scale to mW; 0xf0-0xf2 at scale 0 are 250, 275 and 300 W. */
static unsigned power_limit_mw(unsigned value, unsigned scale) {
        if (scale == 0 && value >= 0xf0)
                return value <= 0xf2 ? (250 + 25 * (value - 0xf0)) * 1000 : 300000;
        static const unsigned div[] = { 1, 10, 100, 1000 };
        return value * 1000 / div[scale & 3];
}

struct slot_power {
        bool port;   /* the slot's limit (a port's Slot Capabilities), else the device's own */
        unsigned mw; /* 0: none stated */
};

static int slot_power(const struct libpci_dl *pci, struct pci_dev *pdev, void *userdata) {
        struct slot_power *sp = userdata;
        struct pci_cap *cap = pci->pci_find_cap(pdev, PCI_CAP_ID_EXP, PCI_CAP_NORMAL);
        if (cap && sp->port) {
                /* Slot Capabilities mean something only where the port implements a slot */
                if (pci->pci_read_word(pdev, cap->addr + PCI_EXP_FLAGS) & PCI_EXP_FLAGS_SLOT) {
                        uint32_t sltcap = pci->pci_read_long(pdev, cap->addr + PCI_EXP_SLTCAP);
                        sp->mw = power_limit_mw((sltcap & PCI_EXP_SLTCAP_PWR_VAL) >> 7,
                                                (sltcap & PCI_EXP_SLTCAP_PWR_SCL) >> 15);
                }
        } else if (cap) {
                uint32_t devcap = pci->pci_read_long(pdev, cap->addr + PCI_EXP_DEVCAP);
                sp->mw = power_limit_mw((devcap & PCI_EXP_DEVCAP_PWR_VAL) >> 18,
                                        (devcap & PCI_EXP_DEVCAP_PWR_SCL) >> 26);
        }
        return sp->mw > 0;
}

int doctor_pci_slot_power(struct doctor *d, const char *bdf, bool port, unsigned *ret_mw) {
        struct slot_power sp = { .port = port };
        int r = with_pci_dev(d, bdf, PCI_FILL_CAPS, slot_power, &sp);
        *ret_mw = r > 0 ? sp.mw : 0;
        return r;
}

bool doctor_pci_upstream(const char *bdf, char *buf, size_t size) {
        char link[256], p[4096], real[PATH_MAX];
        snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", bdf);
        if (root_path(p, sizeof(p), link) < 0 || !realpath(p, real))
                return false;
        char *slash = strrchr(real, '/');
        if (!slash)
                return false;
        *slash = '\0';
        const char *parent = strrchr(real, '/');
        unsigned dom, bus, dev, fn;
        char tail;
        if (!parent || sscanf(parent + 1, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4)
                return false;
        snprintf(buf, size, "%s", parent + 1);
        return true;
}
