/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dlopen-util.h — an optional shared library loaded with dlopen() on first use, its functions
 * resolved once into a table of typed pointers.
 *
 * libvgpu.so is loaded by every vgpuctl command, so each library it NEEDs is paid for by each
 * command at start (libsystemd, libkmod and libsensors with what they pull in were 11 of the
 * 19 libraries of `vgpuctl --version` and about 2 of its 3.2 ms), though only a few checks and
 * the daemon's sensor collector use them. Loaded
 * here, they cost only the code that calls them; where one is missing, that code gets
 * -EOPNOTSUPP and a message naming the library, and reports "unknown" instead of the program
 * failing to start. This is what systemd does for its optional libraries (dlopen_many_sym_or_warn).
 *
 * A user lists its functions once with an X-macro and makes the table from it:
 *
 *     #define KMOD_FUNCS(X) X(kmod_new) X(kmod_unref)
 *     static struct { KMOD_FUNCS(DLOPEN_FIELD) } kmod;
 *     #define KMOD_SYMBOL(fn) DLOPEN_SYMBOL(kmod, fn)
 *     static const struct dlopen_symbol kmod_symbols[] = { KMOD_FUNCS(KMOD_SYMBOL) };
 *     struct dlopen_library kmod_library = DLOPEN_LIBRARY("libkmod.so.2", "libkmod2", kmod_symbols);
 *     ...
 *     int r = dlopen_library_load(&kmod_library, err);
 *     if (r < 0)
 *             return r;
 *     kmod.kmod_new(...);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vgpu/error.h"
#include "macro.h"

struct dlopen_symbol {
        const char *name;
        void **ptr;
};

struct dlopen_library {
        const char *soname;  /* what dlopen() is given: "libkmod.so.2" */
        const char *package; /* the Debian package that ships it, for the message */
        const struct dlopen_symbol *symbols;
        size_t n_symbols;
        /* set by the first dlopen_library_load(), under its lock */
        bool tried;
        int result; /* 0 loaded, -EOPNOTSUPP */
        char error[256];
};

/* A field of the function table: a pointer of the function's own type (the header declares it). */
#define DLOPEN_FIELD(fn)         __typeof__(fn) *fn;
/* The symbol table's entry that fills field fn of the struct variable `table`. */
#define DLOPEN_SYMBOL(table, fn) { #fn, (void **) &(table).fn },
#define DLOPEN_LIBRARY(so, pkg, syms) \
        { .soname = (so), .package = (pkg), .symbols = (syms), .n_symbols = ELEMENTSOF(syms) }

/*
 * Load the library and resolve its symbols, the first time only (the result, success or not,
 * is kept: a library does not appear while a command runs). Thread-safe. Returns 0, or
 * -EOPNOTSUPP with err naming the library ("libkmod.so.2 is not installed (Debian: apt install
 * libkmod2)") when it is absent or lacks a symbol. The library is never unloaded: several keep
 * global state, and sanitizers need their code to symbolise stacks at exit.
 */
int dlopen_library_load(struct dlopen_library *lib, struct vgpu_error *err);
