/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor-dl.h — the doctor's optional libraries, libsystemd (sd-journal, sd-bus) and libkmod,
 * loaded with dlopen() by the checks that read the journal, a unit's state or a module's
 * vermagic (basic/dlopen-util.h says why). Without them those checks report what they could
 * not read; every other command never loads them.
 */
#pragma once

#include <libkmod.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include "basic/dlopen-util.h"

#define LIBSYSTEMD_FUNCS(X)            \
        X(sd_journal_open)             \
        X(sd_journal_open_directory)   \
        X(sd_journal_add_match)        \
        X(sd_journal_add_disjunction)  \
        X(sd_journal_seek_head)        \
        X(sd_journal_seek_tail)        \
        X(sd_journal_next)             \
        X(sd_journal_previous)         \
        X(sd_journal_get_data)         \
        X(sd_journal_close)            \
        X(sd_bus_open_system)          \
        X(sd_bus_path_encode)          \
        X(sd_bus_get_property_string)  \
        X(sd_bus_get_property_trivial) \
        X(sd_bus_error_free)           \
        X(sd_bus_flush_close_unref)

#define LIBKMOD_FUNCS(X)              \
        X(kmod_new)                   \
        X(kmod_unref)                 \
        X(kmod_list_next)             \
        X(kmod_module_new_from_path)  \
        X(kmod_module_unref)          \
        X(kmod_module_get_info)       \
        X(kmod_module_info_get_key)   \
        X(kmod_module_info_get_value) \
        X(kmod_module_info_free_list)

struct libsystemd_dl {
        LIBSYSTEMD_FUNCS(DLOPEN_FIELD)
};
struct libkmod_dl {
        LIBKMOD_FUNCS(DLOPEN_FIELD)
};

/* The libraries as loaded (tests point .soname at a missing one before the first use). */
extern struct dlopen_library doctor_libsystemd_library, doctor_libkmod_library;

/* The function tables, loaded on first use; NULL with err filled (-EOPNOTSUPP, the message names
 * the library) where it is not installed. */
const struct libsystemd_dl *doctor_libsystemd(struct vgpu_error *err);
const struct libkmod_dl *doctor_libkmod(struct vgpu_error *err);
