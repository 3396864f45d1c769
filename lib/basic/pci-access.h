/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci-access.h — a libpci handle that never prints and never exits.
 *
 * libpci's error callback must not return, and its default one calls exit(): a library may not
 * do that. Handles from pci_access_new_quiet() longjmp to pci_error_jump instead, so every call
 * that can fail is preceded by `if (setjmp(pci_error_jump)) { ...give up... }` at the caller
 * (locals changed after the setjmp must be volatile). Warnings and debug output are dropped.
 */
#pragma once

#include <setjmp.h>

#include <pci/pci.h>

extern __thread jmp_buf pci_error_jump;

/* pci_alloc() with the quiet callbacks set; NULL when out of memory. */
struct pci_access *pci_access_new_quiet(void);
