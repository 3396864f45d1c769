/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci-names.c — vendor and device names from libpci's id database (pci.ids, then the udev
 * hwdb), so names match what lspci prints, in every output that has them (`list`, `show`,
 * `/v1/gpus`).
 *
 * libpci parses all of pci.ids (some 40000 entries) on its first lookup, which costs about
 * 12 ms — more than the rest of a `list` on a 500-function host. A host has a handful of
 * distinct vendor:device pairs, so they are first looked up in one pass over the same file
 * libpci reads (its vendor and device lines, as libpci parses them); only a pair the file lacks
 * (a device newer than pci.ids, which libpci may still find in the hwdb) goes to libpci.
 *
 * The pass needs no libpci: the file is the one libpci reads by default (PCI_IDS_FILE, from
 * libpci's pkg-config idsdir at build time), so a host whose ids are all in it never loads libpci
 * (basic/pci-access.h says why that matters). Without libpci the rest stay NULL, as unknown ids do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/pci-access.h"
#include "host-internal.h"

struct id_pair {
        unsigned vendor, device;
        char *vendor_name, *device_name;
};

/* 4 hex digits, then a space or tab (libpci's id_hex + id_white_p); -1 otherwise. */
static int parse_id(const char *p, const char *end) {
        unsigned v = 0;
        if (end - p < 5 || (p[4] != ' ' && p[4] != '\t'))
                return -1;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                unsigned d = c >= '0' && c <= '9'   ? (unsigned) (c - '0')
                             : c >= 'a' && c <= 'f' ? (unsigned) (c - 'a' + 10)
                             : c >= 'A' && c <= 'F' ? (unsigned) (c - 'A' + 10)
                                                    : 16;
                if (d > 15)
                        return -1;
                v = v << 4 | d;
        }
        return (int) v;
}

/* The name after the id into an empty *slot, blanks around it dropped (an empty one stays NULL),
 * counting down *missing; 0 or -ENOMEM. */
static int take_name(const char *p, const char *end, char **slot, size_t *missing) {
        if (*slot)
                return 0; /* the first line for an id wins, as in libpci */
        p += 4;
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
        if (end == p)
                return 0;
        if (!(*slot = strndup(p, (size_t) (end - p))))
                return -ENOMEM;
        (*missing)--;
        return 0;
}

/* One pass over pci.ids's text for the pairs' names; -ENOMEM or 0 (names not found stay NULL). */
static int scan_ids_text(const char *text, size_t size, struct id_pair *pairs, size_t n) {
        const char *end = text + size;
        int vendor = -1;        /* the vendor whose device lines follow, when one is wanted */
        size_t missing = 2 * n; /* names not found yet: the pass ends when there are none */
        for (const char *line = text, *eol; line < end && missing > 0; line = eol + 1) {
                if (!(eol = memchr(line, '\n', (size_t) (end - line))))
                        eol = end;
                if (line[0] != '\t') {
                        /* top level: a vendor, or a class ("C ...") or another list, which ends the vendor */
                        if (line == eol || line[0] == '#')
                                continue;
                        int id = parse_id(line, eol);
                        vendor = -1;
                        for (size_t i = 0; id >= 0 && i < n; i++)
                                if (pairs[i].vendor == (unsigned) id) {
                                        vendor = id;
                                        if (take_name(line, eol, &pairs[i].vendor_name, &missing) < 0)
                                                return -ENOMEM;
                                }
                } else if (vendor >= 0 && line[1] != '\t' && line[1] != '#') {
                        /* one tab: a device of the vendor (two: a subsystem) */
                        int id = parse_id(line + 1, eol);
                        for (size_t i = 0; id >= 0 && i < n; i++)
                                if (pairs[i].vendor == (unsigned) vendor &&
                                    pairs[i].device == (unsigned) id &&
                                    take_name(line + 1, eol, &pairs[i].device_name, &missing) < 0)
                                        return -ENOMEM;
                }
        }
        return 0;
}

/* The pairs' names from the id file at path; a file that cannot be read leaves them NULL. */
static int scan_ids_file(const char *path, struct id_pair *pairs, size_t n) {
        /* libpci's default is "pci.ids.gz", and the name without ".gz" when that does not
         * exist (Debian ships it uncompressed); a compressed file is left to libpci */
        char plain[4096];
        size_t len = strlen(path);
        if (len > 3 && len < sizeof(plain) && strcmp(path + len - 3, ".gz") == 0) {
                if (access(path, F_OK) == 0)
                        return 0;
                snprintf(plain, sizeof(plain), "%.*s", (int) (len - 3), path);
                path = plain;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        /* mapped, not read: the pass stops at the last wanted vendor, so most pages are never touched */
        struct stat st;
        void *text = fstat(fd, &st) == 0 && st.st_size > 0
                             ? mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
                             : MAP_FAILED;
        close(fd);
        if (text == MAP_FAILED)
                return 0;
        int r = scan_ids_text(text, (size_t) st.st_size, pairs, n);
        munmap(text, (size_t) st.st_size);
        return r;
}

/* Names libpci gives for the GPUs whose name is still NULL (pci.ids, then the hwdb). */
int pci_fill_names_libpci(struct vgpu_host *host, struct vgpu_error *err) {
        if (host->n_gpus == 0)
                return 0;
        const struct libpci_dl *pci = libpci(NULL);
        if (!pci)
                return 0; /* not installed: names stay NULL, as when a name is unknown */
        struct pci_access *pacc = pci_access_new_quiet(pci);
        if (!pacc)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        if (setjmp(pci_error_jump)) {
                pci->pci_cleanup(pacc);
                return 0; /* no id database: names stay NULL, as when a name is unknown */
        }
        /* Name lookup only: no bus scan, no network lookups. */
        pci->pci_init(pacc);

        int r = 0;
        for (size_t i = 0; i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                char buf[256];
                const char *s;
                if (!g->vendor_name &&
                    (s = pci->pci_lookup_name(pacc, buf, sizeof(buf),
                                              PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, g->vendor_id)) &&
                    !(g->vendor_name = strdup(s))) {
                        r = -ENOMEM;
                        break;
                }
                if (!g->device_name &&
                    (s = pci->pci_lookup_name(pacc, buf, sizeof(buf),
                                              PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, g->vendor_id,
                                              g->device_id)) &&
                    !(g->device_name = strdup(s))) {
                        r = -ENOMEM;
                        break;
                }
        }
        pci->pci_cleanup(pacc);
        return r < 0 ? vgpu_error_set(err, r, "out of memory") : 0;
}

int pci_fill_names_fast(struct vgpu_host *host, bool *ret_complete, struct vgpu_error *err) {
        bool complete = true;
        if (host->n_gpus == 0) {
                *ret_complete = true;
                return 0;
        }
        struct id_pair *pairs = calloc(host->n_gpus, sizeof(*pairs));
        size_t n = 0;
        int r = pairs ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                size_t j = 0;
                while (j < n && (pairs[j].vendor != g->vendor_id || pairs[j].device != g->device_id))
                        j++;
                if (j == n)
                        pairs[n++] = (struct id_pair){ .vendor = g->vendor_id, .device = g->device_id };
        }
        if (r >= 0)
                r = scan_ids_file(PCI_IDS_FILE, pairs, n);
        for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                for (size_t j = 0; j < n; j++) {
                        if (pairs[j].vendor != g->vendor_id || pairs[j].device != g->device_id)
                                continue;
                        if ((pairs[j].vendor_name && !g->vendor_name &&
                             !(g->vendor_name = strdup(pairs[j].vendor_name))) ||
                            (pairs[j].device_name && !g->device_name &&
                             !(g->device_name = strdup(pairs[j].device_name))))
                                r = -ENOMEM;
                        complete = complete && g->vendor_name && g->device_name;
                }
        }
        for (size_t j = 0; pairs && j < n; j++) {
                free(pairs[j].vendor_name);
                free(pairs[j].device_name);
        }
        free(pairs);
        if (r < 0)
                return vgpu_error_set(err, r, "out of memory");
        *ret_complete = complete;
        return 0;
}

int pci_fill_names(struct vgpu_host *host, struct vgpu_error *err) {
        bool complete;
        int r = pci_fill_names_fast(host, &complete, err);
        if (r < 0 || complete)
                return r;
        return pci_fill_names_libpci(host, err);
}
