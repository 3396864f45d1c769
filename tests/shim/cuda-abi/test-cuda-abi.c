/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-cuda-abi — the shim's declarations (shim/cuda-types.h, shim/entries.h) against NVIDIA's
 * cuda.h, where a CUDA toolkit is installed; no GPU or driver needed. What the compiler already
 * proved by building this test (meson.build): every wrapper and PFN has NVIDIA's prototype.
 * What it checks here, as TAP:
 *   1. layout: every struct size, member offset and size, and constant value are NVIDIA's;
 *   2. entries: the symbols the compiler checked are the table's own, not renamed by a macro;
 *   3. coverage: for each name the shim wraps, the symbol a program built against cuda.h calls
 *      (cuMemAlloc → cuMemAlloc_v2; with per-thread default stream cuLaunchKernel → _ptsz) is
 *      one the shim wraps, so no program slips past it by being compiled with this CUDA;
 *   4. exports: where the toolkit's stub libcuda.so is (CUDA_ABI_STUB), every symbol of the table
 *      is one NVIDIA's driver library exports.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../shim/shim.h"
#include "cuda-abi.h"

static int n_test, n_failed;

static void ok(int pass, const char *what) {
        n_test++;
        if (!pass)
                n_failed++;
        printf("%sok %d - %s\n", pass ? "" : "not ", n_test, what);
}

struct entry {
        const char *symbol;
        const char *name;
        char probe; /* N, L, P, V (NVML) */
        char kind;  /* W, R */
};
#define PROBE_CHAR_N                                'N'
#define PROBE_CHAR_L                                'L'
#define PROBE_CHAR_P                                'P'
#define PROBE_CHAR_NV                               'V'
#define ENTRY_ROW(sym, base, ver, probe, kind, pfn) { #sym, #base, PROBE_CHAR_##probe, #kind[0] },
static const struct entry entries[] = { SHIM_ENTRIES(ENTRY_ROW) };
static const size_t n_entries = sizeof(entries) / sizeof(entries[0]);

static int wrapped(const char *symbol) {
        for (size_t i = 0; i < n_entries; i++)
                if (entries[i].kind == 'W' && strcmp(entries[i].symbol, symbol) == 0)
                        return 1;
        return 0;
}

static void check_layout(void) {
        int bad = cuda_abi_ours_n != cuda_abi_nvidia_n;
        for (size_t i = 0; i < cuda_abi_ours_n && i < cuda_abi_nvidia_n; i++)
                if (cuda_abi_ours[i].value != cuda_abi_nvidia[i].value) {
                        printf("# %s: shim %lld, NVIDIA %lld\n", cuda_abi_ours[i].what,
                               cuda_abi_ours[i].value, cuda_abi_nvidia[i].value);
                        bad = 1;
                }
        char what[96];
        snprintf(what, sizeof(what), "layout: %zu sizes, offsets and constants equal NVIDIA's",
                 cuda_abi_ours_n);
        ok(!bad, what);
}

static void check_entries(void) {
        int bad = cuda_abi_entries_nvidia_n != n_entries;
        size_t checked = 0;
        for (size_t i = 0; i < cuda_abi_entries_nvidia_n && i < n_entries; i++) {
                const struct cuda_abi_symbol *s = &cuda_abi_entries_nvidia[i];
                if (entries[i].probe == 'V')
                        continue;
                checked++;
                if (strcmp(s->written, s->expanded) != 0) {
                        printf("# %s: cuda.h renames it to %s, so its prototype was not the one checked\n",
                               s->written, s->expanded);
                        bad = 1;
                }
        }
        char what[96];
        snprintf(what, sizeof(what), "entries: %zu symbols checked against cuda.h under their own names",
                 checked);
        ok(!bad, what);
}

/* rows: symbols-nvidia.c's table for one stream mode; probes: the entries it speaks for */
static void check_coverage(const char *mode, const struct cuda_abi_symbol *rows, size_t n_rows,
                           const char *probes) {
        int bad = n_rows != n_entries;
        size_t checked = 0;
        for (size_t i = 0; i < n_rows && i < n_entries; i++) {
                if (entries[i].kind != 'W' || !strchr(probes, entries[i].probe))
                        continue;
                checked++;
                if (!wrapped(rows[i].expanded)) {
                        printf("# %s: a program built against cuda.h (%s) calls %s, which the shim does not "
                               "wrap\n",
                               rows[i].written, mode, rows[i].expanded);
                        bad = 1;
                }
        }
        char what[128];
        snprintf(what, sizeof(what),
                 "coverage (%s): the symbols %zu wrapped names compile to are all wrapped", mode, checked);
        ok(!bad && checked > 0, what);
}

/* The toolkit's stub of libcuda.so exports every entry point of the driver it belongs to. */
static void check_exports(const char *stub) {
        void *h = dlopen(stub, RTLD_LAZY | RTLD_LOCAL);
        if (!h) {
                printf("# %s: %s\n", stub, dlerror());
                ok(0, "exports: NVIDIA's stub libcuda.so loads");
                return;
        }
        int bad = 0;
        size_t checked = 0;
        for (size_t i = 0; i < n_entries; i++) {
                if (entries[i].probe == 'V')
                        continue;
                checked++;
                if (!dlsym(h, entries[i].symbol)) {
                        printf("# %s: not exported by %s\n", entries[i].symbol, stub);
                        bad = 1;
                }
        }
        dlclose(h);
        char what[96];
        snprintf(what, sizeof(what), "exports: NVIDIA's libcuda.so exports all %zu symbols of the table",
                 checked);
        ok(!bad, what);
}

int main(void) {
        printf("# NVIDIA cuda.h CUDA_VERSION %d\n", cuda_abi_nvidia_version);
        check_layout();
        check_entries();
        check_coverage("default stream", cuda_abi_symbols_default, cuda_abi_symbols_default_n, "NL");
        check_coverage("per-thread default stream", cuda_abi_symbols_ptds, cuda_abi_symbols_ptds_n, "P");
        const char *stub = getenv("CUDA_ABI_STUB");
        if (stub && *stub)
                check_exports(stub);
        else
                printf("# no stub libcuda.so in the toolkit: exports not checked\n");
        printf("1..%d\n", n_test);
        return n_failed ? 1 : 0;
}
