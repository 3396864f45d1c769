/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor-dl.c — libsystemd and libkmod for the doctor, loaded on first use (see doctor-dl.h). */
#include "doctor-dl.h"

static struct libsystemd_dl libsystemd;
#define LIBSYSTEMD_SYMBOL(fn) DLOPEN_SYMBOL(libsystemd, fn)
static const struct dlopen_symbol libsystemd_symbols[] = { LIBSYSTEMD_FUNCS(LIBSYSTEMD_SYMBOL) };
struct dlopen_library doctor_libsystemd_library =
        DLOPEN_LIBRARY("libsystemd.so.0", "libsystemd0", libsystemd_symbols);

static struct libkmod_dl libkmod;
#define LIBKMOD_SYMBOL(fn) DLOPEN_SYMBOL(libkmod, fn)
static const struct dlopen_symbol libkmod_symbols[] = { LIBKMOD_FUNCS(LIBKMOD_SYMBOL) };
struct dlopen_library doctor_libkmod_library = DLOPEN_LIBRARY("libkmod.so.2", "libkmod2", libkmod_symbols);

const struct libsystemd_dl *doctor_libsystemd(struct vgpu_error *err) {
        return dlopen_library_load(&doctor_libsystemd_library, err) < 0 ? NULL : &libsystemd;
}

const struct libkmod_dl *doctor_libkmod(struct vgpu_error *err) {
        return dlopen_library_load(&doctor_libkmod_library, err) < 0 ? NULL : &libkmod;
}
