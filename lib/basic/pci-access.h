/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci-access.h — libpci, loaded with dlopen() on first use, and handles that never print and never
 * exit.
 *
 * libpci (with libudev and libz, which it pulls in) cost every command about 0.2 ms at start while
 * only two things use it: the names of ids pci.ids lacks (host/pci-names.c, which reads pci.ids
 * itself for the rest) and the doctor's config-space checks (doctor/pci-config.c). Loaded here
 * (basic/dlopen-util.h), `list` and every other command never map it. It is a dependency of the
 * package all the same (debian/control): where it is missing, those users get -EOPNOTSUPP and a
 * message naming libpci3.
 *
 * libpci's error callback must not return, and its default one calls exit(): a library may not
 * do that. Handles from pci_access_new_quiet() longjmp to pci_error_jump instead, so every call
 * that can fail is preceded by `if (setjmp(pci_error_jump)) { ...give up... }` at the caller
 * (locals changed after the setjmp must be volatile). Warnings and debug output are dropped.
 */
#pragma once

#include <setjmp.h>

#include <pci/pci.h>

#include "basic/dlopen-util.h"

#define LIBPCI_FUNCS(X)    \
        X(pci_alloc)       \
        X(pci_init)        \
        X(pci_cleanup)     \
        X(pci_set_param)   \
        X(pci_lookup_name) \
        X(pci_get_dev)     \
        X(pci_free_dev)    \
        X(pci_fill_info)   \
        X(pci_find_cap)    \
        X(pci_read_word)   \
        X(pci_read_long)

struct libpci_dl {
        LIBPCI_FUNCS(DLOPEN_FIELD)
};

/* The library as loaded (tests point .soname at a missing one before the first use). */
extern struct dlopen_library libpci_library;

/* libpci's functions, loaded on first use; NULL with err filled (-EOPNOTSUPP, the message names
 * libpci3) where it is not installed. */
const struct libpci_dl *libpci(struct vgpu_error *err);

extern __thread jmp_buf pci_error_jump;

/* pci->pci_alloc() with the quiet callbacks set; NULL when out of memory. */
struct pci_access *pci_access_new_quiet(const struct libpci_dl *pci);
