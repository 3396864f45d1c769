/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tenant-resolve.c — the resolution checks, run inside a tenant under the shim: every way an
 * application reaches a driver function (cuGetProcAddress at each version and flag, dlsym on the
 * driver's handle, RTLD_DEFAULT, the old glibc dlsym symbol version, NVML) must end at the right
 * ABI, wrapped where the shim wraps it and the driver's own function where it does not.
 * Which ABI really ran is what the fake driver records (fakecu_last_call).
 */
#include <stdlib.h>
#include <string.h>

#include "tenant.h"
#include "../../shim/entries.h"

#if defined(__x86_64__)
/* A reference to dlsym@GLIBC_2.2.5, as in programs linked against glibc < 2.34. */
void *old_dlsym(void *handle, const char *name);
__asm__(".symver old_dlsym, dlsym@GLIBC_2.2.5");
#endif

#define MiB (UINT64_C(1) << 20)

static int failures;

static void *gpa(const char *name, int version, cuuint64_t flags, CUresult *ret,
                 CUdriverProcAddressQueryResult *st) {
        void *p = NULL;
        *ret = cu.gpa(name, &p, version, flags, st);
        return p;
}

/* An allocation through f charges the slice and runs the driver's cuMemAlloc_v2. */
static void check_alloc(const char *how, PFN_cuMemAlloc_v3020 f) {
        uint64_t before = tenant_slice_used();
        CUdeviceptr d = 0;
        CUresult r = f ? f(&d, MiB) : CUDA_ERROR_NOT_FOUND;
        CHECK(failures, r == CUDA_SUCCESS, "%s: rc %d", how, r);
        CHECK(failures, streq(cu.last_call(), "cuMemAlloc_v2"), "%s ran %s", how, cu.last_call());
        CHECK(failures, tenant_slice_used() == before + MiB, "%s: used %llu, expected %llu", how,
              (unsigned long long) tenant_slice_used(), (unsigned long long) (before + MiB));
        if (r == CUDA_SUCCESS)
                cu.mem_free(d);
        CHECK(failures, tenant_slice_used() == before, "%s: free did not return the charge", how);
}

static void check_launch(const char *name, int version, cuuint64_t flags, const char *expect) {
        CUresult r;
        void *p = gpa(name, version, flags, &r, NULL);
        CHECK(failures, r == CUDA_SUCCESS && in_shim(p), "%s@%d/%llu: rc %d, not wrapped", name, version,
              (unsigned long long) flags, r);
        if (r != CUDA_SUCCESS)
                return;
        uint64_t ns = 1000;
        void *params[] = { &ns };
        CUlaunchConfig config = {
                .gridDimX = 1, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 1, .blockDimY = 1, .blockDimZ = 1
        };
        CUgraphExec g = NULL;
        if (streq(name, "cuLaunchKernel"))
                r = ((PFN_cuLaunchKernel_v4000) p)(cu.busy, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
        else if (streq(name, "cuLaunchKernelEx"))
                r = ((PFN_cuLaunchKernelEx_v11060) p)(&config, cu.busy, params, NULL);
        else if (streq(name, "cuLaunchCooperativeKernel"))
                r = ((PFN_cuLaunchCooperativeKernel_v9000) p)(cu.busy, 1, 1, 1, 1, 1, 1, 0, NULL, params);
        else {
                cu.graph_busy(&g, ns);
                r = ((PFN_cuGraphLaunch_v10000) p)(g, NULL);
        }
        CHECK(failures, r == CUDA_SUCCESS && streq(cu.last_call(), expect), "%s@%d/%llu ran %s, expected %s",
              name, version, (unsigned long long) flags, cu.last_call(), expect);
        cu.sync();
        free(g);
}

static void check_get_proc_address(void) {
        CUresult r;
        CUdriverProcAddressQueryResult st = -1;

        /* Below 3020 cuMemAlloc is the 32-bit v1 ABI: the driver's, never our v2 wrapper. */
        void *p = gpa("cuMemAlloc", 2000, 0, &r, &st);
        CHECK(failures, r == CUDA_SUCCESS && in_driver(p), "cuMemAlloc@2000 is not the driver's v1");
        if (p) {
                unsigned d32;
                r = ((CUresult(*)(unsigned *, unsigned)) p)(&d32, 4096);
                CHECK(failures, r == CUDA_ERROR_NOT_SUPPORTED && streq(cu.last_call(), "cuMemAlloc"),
                      "v1 ran %s (rc %d)", cu.last_call(), r);
        }
        check_alloc("cuMemAlloc@3020", gpa("cuMemAlloc", 3020, 0, &r, NULL));
        check_alloc("cuMemAlloc@12040", gpa("cuMemAlloc", 12040, 0, &r, NULL));

        const char *launches[] = { "cuLaunchKernel", "cuLaunchKernelEx", "cuLaunchCooperativeKernel",
                                   "cuGraphLaunch" };
        for (size_t i = 0; i < ELEMENTSOF(launches); i++) {
                char ptsz[64];
                snprintf(ptsz, sizeof(ptsz), "%s_ptsz", launches[i]);
                check_launch(launches[i], 12040, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, ptsz);
                check_launch(launches[i], 12040, CU_GET_PROC_ADDRESS_LEGACY_STREAM, launches[i]);
                check_launch(launches[i], 12040, CU_GET_PROC_ADDRESS_DEFAULT, launches[i]);
        }
        /* Per-thread asked for below the version that has it: the legacy ABI, still wrapped. */
        check_launch("cuLaunchKernel", 6050, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuLaunchKernel");

        /* The driver's answers for what it does not have pass through unchanged. */
        p = gpa("cuMemAllocAsync", 11000, 0, &r, &st);
        CHECK(failures, r == CUDA_ERROR_NOT_FOUND && !p && st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT,
              "cuMemAllocAsync@11000: rc %d status %d", r, st);
        p = gpa("cuNoSuchFunction", 12040, 0, &r, &st);
        CHECK(failures, r == CUDA_ERROR_NOT_FOUND && !p && st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND,
              "cuNoSuchFunction: rc %d status %d", r, st);
        /* What the shim does not wrap is the driver's own function. */
        p = gpa("cuCtxSynchronize", 12040, 0, &r, NULL);
        CHECK(failures, r == CUDA_SUCCESS && in_driver(p), "cuCtxSynchronize was wrapped");

        /* cuGetProcAddress found through itself: v1 below 12000, v2 from there, both ours. */
        PFN_cuGetProcAddress_v11030 v1 = gpa("cuGetProcAddress", 11030, 0, &r, NULL);
        CHECK(failures, in_shim(v1), "cuGetProcAddress@11030 not wrapped");
        void *v2 = gpa("cuGetProcAddress", 12000, 0, &r, NULL);
        CHECK(failures, in_shim(v2) && v2 != (void *) v1, "cuGetProcAddress@12000 not the wrapped v2");
        if (in_shim(v1)) {
                p = NULL;
                r = v1("cuMemAlloc", &p, 12040, 0);
                CHECK(failures, r == CUDA_SUCCESS && in_shim(p),
                      "cuMemAlloc through the v1 resolver not wrapped");
        }
}

static void check_dlsym(void) {
        check_alloc("dlsym cuMemAlloc_v2", dlsym(cu.lib, "cuMemAlloc_v2"));
        CHECK(failures, in_driver(dlsym(cu.lib, "cuMemAlloc")), "dlsym cuMemAlloc (v1) was wrapped");
        PFN_cuLaunchKernel_v4000 l = dlsym(cu.lib, "cuLaunchKernel_ptsz");
        CHECK(failures, in_shim(l), "dlsym cuLaunchKernel_ptsz not wrapped");
        if (l) {
                uint64_t ns = 1000;
                void *params[] = { &ns };
                l(cu.busy, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL);
                CHECK(failures, streq(cu.last_call(), "cuLaunchKernel_ptsz"), "dlsym'd ptsz ran %s",
                      cu.last_call());
                cu.sync();
        }
        CHECK(failures, in_shim(dlsym(cu.lib, "cuGetProcAddress")), "dlsym cuGetProcAddress not wrapped");
        /* Programs linked with -lcuda bind to the shim's exports. */
        check_alloc("RTLD_DEFAULT cuMemAlloc_v2", dlsym(RTLD_DEFAULT, "cuMemAlloc_v2"));
        /* RTLD_NEXT still means "after the caller": from here the next dlsym is the shim's. If
         * the shim's dlsym were not a tail call, glibc would search after the shim and find libc's. */
        CHECK(failures, in_shim(dlsym(RTLD_NEXT, "dlsym")),
              "dlsym(RTLD_NEXT) searched from the wrong object");
        CHECK(failures, dlsym(RTLD_DEFAULT, "strlen") == (void *) strlen,
              "dlsym of an ordinary name changed");
#if defined(__x86_64__)
        check_alloc("dlsym@GLIBC_2.2.5 cuMemAlloc_v2", old_dlsym(cu.lib, "cuMemAlloc_v2"));
#endif
}

/* NVML through dlsym, as PyTorch reads it: the slice's numbers, never wrapping. */
static void check_nvml(void) {
        void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        CHECK(failures, h, "no NVML double: %s", dlerror());
        if (!h)
                return;
        int (*init)(void) = dlsym(h, "nvmlInit_v2");
        int (*by_index)(unsigned, nvmlDevice_t *) = dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
        PFN_nvmlDeviceGetMemoryInfo info = dlsym(h, "nvmlDeviceGetMemoryInfo");
        CHECK(failures, in_shim(info), "nvmlDeviceGetMemoryInfo not wrapped");
        nvmlDevice_t dev;
        bool usable = init && init() == 0 && by_index && by_index(0, &dev) == 0;
        CHECK(failures, usable, "NVML double not usable");
        if (!usable)
                return; /* no device handle to ask */
        CUdeviceptr d;
        CHECK(failures, cu.mem_alloc(&d, 3 * MiB) == CUDA_SUCCESS, "alloc");
        nvmlMemory_t m = {};
        CHECK(failures, info && info(dev, &m) == 0, "nvmlDeviceGetMemoryInfo failed");
        uint64_t quota = tenant_slice()->quota;
        CHECK(failures, m.total == quota && m.used == 3 * MiB && m.free == quota - 3 * MiB,
              "NVML total %llu used %llu free %llu, expected %llu / %llu / %llu", m.total, m.used, m.free,
              (unsigned long long) quota, (unsigned long long) (3 * MiB),
              (unsigned long long) (quota - 3 * MiB));
        cu.mem_free(d);
}

/* A primary context reset frees all its memory: the shim must release it first (scrub, then give
 * the quota back), through either ABI: 7000, which NVIDIA's cudart 13 asks for (cudaDeviceReset),
 * and _v2 (11000). The slice scrubs on free. */
static void check_reset(void) {
        static const struct {
                int version;
                const char *abi;
        } abis[] = {
                { 7000, "cuDevicePrimaryCtxReset" },
                { 11000, "cuDevicePrimaryCtxReset_v2" },
        };
        for (size_t i = 0; i < ELEMENTSOF(abis); i++) {
                CUresult r;
                PFN_cuDevicePrimaryCtxReset_v7000 reset =
                        gpa("cuDevicePrimaryCtxReset", abis[i].version, 0, &r, NULL);
                CHECK(failures, r == CUDA_SUCCESS && in_shim((void *) reset),
                      "cuDevicePrimaryCtxReset@%d not wrapped", abis[i].version);
                if (!reset)
                        continue;
                uint64_t used = tenant_slice_used(), device = cu.device_used(), n0, b0, n1, b1;
                CUdeviceptr d;
                CHECK(failures, cu.mem_alloc(&d, 3 * MiB) == CUDA_SUCCESS, "alloc before the reset");
                cu.memset_stats(&n0, &b0);
                r = reset(0);
                cu.memset_stats(&n1, &b1);
                CHECK(failures, r == CUDA_SUCCESS && streq(cu.last_call(), abis[i].abi), "@%d ran %s (rc %d)",
                      abis[i].version, cu.last_call(), r);
                CHECK(failures, b1 - b0 >= 3 * MiB,
                      "@%d: %llu bytes scrubbed before the reset, expected 3 MiB", abis[i].version,
                      (unsigned long long) (b1 - b0));
                CHECK(failures, tenant_slice_used() == used && cu.device_used() == device,
                      "@%d: used %llu (was %llu), device %llu (was %llu) after the reset", abis[i].version,
                      (unsigned long long) tenant_slice_used(), (unsigned long long) used,
                      (unsigned long long) cu.device_used(), (unsigned long long) device);
        }
}

/* shim/entries.h: each exact symbol, the name cuGetProcAddress knows it by, and whether the
 * shim wraps it (or only calls it). */
#define ENTRY_ROW(sym, base, ver, probe, kind, pfn) { #sym, #base, #kind[0] == 'W' },
static const struct {
        const char *symbol, *name;
        bool wrapped;
} entries[] = { SHIM_ENTRIES(ENTRY_ROW) };
#undef ENTRY_ROW

/* Programs linked with -lcuda bind to exact symbols at load time: the shim must export every
 * ABI it wraps (shim/libvgpu-cuda.sym against shim/entries.h). */
static void check_exports(void) {
        for (size_t i = 0; i < ELEMENTSOF(entries); i++)
                if (entries[i].wrapped)
                        CHECK(failures, in_shim(dlsym(RTLD_DEFAULT, entries[i].symbol)),
                              "%s is wrapped but not exported by the shim", entries[i].symbol);
}

/* Does the shim wrap some ABI of this name? */
static bool name_wrapped(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(entries); i++)
                if (entries[i].wrapped && streq(entries[i].name, name))
                        return true;
        return false;
}

/* Each line "name cudaVersion flags" of path (what a CUDA runtime asks cuGetProcAddress for,
 * tests/shim/cudart-requests) whose name the shim wraps must come back as the shim's function:
 * otherwise programs using that runtime reach the driver around the slice. */
int tenant_requests(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "tenant: %s: %m\n", path);
                return 1;
        }
        char line[256], name[128];
        int version, n = 0, lineno = 0;
        unsigned long long flags;
        while (fgets(line, sizeof(line), f)) {
                lineno++;
                if (line[0] == '#' || line[0] == '\n')
                        continue;
                if (sscanf(line, "%127s %d %llu", name, &version, &flags) != 3) {
                        CHECK(failures, false, "%s:%d: not \"name version flags\"", path, lineno);
                        continue;
                }
                if (!name_wrapped(name))
                        continue;
                n++;
                CUresult r;
                void *p = gpa(name, version, flags, &r, NULL);
                CHECK(failures, r == CUDA_SUCCESS,
                      "%s:%d: the fake driver has no %s@%d/%llu (tests/shim/fake-resolve.c)", path, lineno,
                      name, version, flags);
                CHECK(failures, r != CUDA_SUCCESS || in_shim(p),
                      "%s:%d: %s@%d/%llu is the driver's own function: the shim does not wrap that ABI", path,
                      lineno, name, version, flags);
        }
        fclose(f);
        CHECK(failures, n > 0, "%s: no request for a name the shim wraps", path);
        printf("requests: %d for wrapped names, %d failure(s)\n", n, failures);
        return failures ? 1 : 0;
}

int tenant_resolve(void) {
        if (!tenant_slice()) {
                fprintf(stderr, "tenant: no slice\n");
                return 1;
        }
        check_get_proc_address();
        check_dlsym();
        check_exports(); /* first: dlsym(RTLD_DEFAULT, nvml...) before NVML is loaded */
        check_nvml();
        check_reset();
        printf("resolve: %d failure(s)\n", failures);
        return failures ? 1 : 0;
}
