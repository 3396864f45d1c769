/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci-access.c — libpci's function table, loaded once, and callbacks that jump back to the caller
 * instead of exiting (pci-access.h).
 */
#include <stdarg.h>
#include <stddef.h>

#include "pci-access.h"

static struct libpci_dl libpci_table;
#define LIBPCI_SYMBOL(fn) DLOPEN_SYMBOL(libpci_table, fn)
static const struct dlopen_symbol libpci_symbols[] = { LIBPCI_FUNCS(LIBPCI_SYMBOL) };
struct dlopen_library libpci_library = DLOPEN_LIBRARY("libpci.so.3", "libpci3", libpci_symbols);

const struct libpci_dl *libpci(struct vgpu_error *err) {
        return dlopen_library_load(&libpci_library, err) < 0 ? NULL : &libpci_table;
}

__thread jmp_buf pci_error_jump;

_Noreturn static void pci_error_jump_back(char *msg, ...) {
        (void) msg;
        longjmp(pci_error_jump, 1);
}

static void pci_quiet(char *msg, ...) {
        (void) msg;
}

struct pci_access *pci_access_new_quiet(const struct libpci_dl *pci) {
        struct pci_access *pacc = pci->pci_alloc();
        if (!pacc)
                return NULL;
        pacc->error = pci_error_jump_back;
        pacc->warning = pci_quiet;
        pacc->debug = pci_quiet;
        return pacc;
}
