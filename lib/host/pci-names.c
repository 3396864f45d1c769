/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci-names.c — vendor and device names through libpci (pci.ids / udev hwdb), so names match
 * what lspci prints. Only asked for when a command shows names: loading the id database costs
 * more than the rest of a `list`.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/pci-access.h"
#include "host-internal.h"

int pci_fill_names(struct vgpu_host *host, struct vgpu_error *err) {
        if (host->n_gpus == 0)
                return 0;
        struct pci_access *pacc = pci_access_new_quiet();
        if (!pacc)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        if (setjmp(pci_error_jump)) {
                pci_cleanup(pacc);
                return 0;       /* no id database: names stay NULL, as when a name is unknown */
        }
        /* Name lookup only: no bus scan, no network lookups. */
        pci_init(pacc);

        int r = 0;
        for (size_t i = 0; i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                char buf[256];
                const char *s = pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, g->vendor_id);
                if (s && !(g->vendor_name = strdup(s))) {
                        r = -ENOMEM;
                        break;
                }
                s = pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, g->vendor_id, g->device_id);
                if (s && !(g->device_name = strdup(s))) {
                        r = -ENOMEM;
                        break;
                }
        }
        pci_cleanup(pacc);
        return r < 0 ? vgpu_error_set(err, r, "out of memory") : 0;
}
