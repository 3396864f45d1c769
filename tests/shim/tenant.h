/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* tenant.h — what the tenant's files share: the driver entry points as the application got them. */
#pragma once

#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

#include "basic/macro.h"
#include "slice/slice.h"
#include "../../shim/cuda-types.h"

struct cu {
        void *lib;
        PFN_cuGetProcAddress_v12000 gpa;
        CUresult (*init)(unsigned);
        CUresult (*device_get)(CUdevice *, int);
        CUresult (*retain)(CUcontext *, CUdevice);
        CUresult (*set_current)(CUcontext);
        CUresult (*sync)(void);
        CUresult (*get_function)(CUfunction *, void *, const char *);
        PFN_cuMemAlloc_v3020 mem_alloc;
        PFN_cuMemFree_v3020 mem_free;
        PFN_cuMemGetInfo_v3020 mem_info;
        PFN_cuDeviceTotalMem_v3020 total_mem;
        CUresult (*htod)(CUdeviceptr, const void *, size_t);
        CUresult (*dtoh)(void *, CUdeviceptr, size_t);
        PFN_cuLaunchKernel_v4000 launch, launch_ptsz;
        PFN_cuLaunchKernelEx_v11060 launch_ex;
        PFN_cuLaunchCooperativeKernel_v9000 launch_coop;
        PFN_cuGraphLaunch_v10000 graph_launch;
        CUfunction busy;
        /* the fake's test helpers */
        const char *(*last_call)(void);
        void (*set_window)(uint64_t, uint64_t);
        uint64_t (*window_busy)(void);
        uint64_t (*all_busy)(void);
        void (*memset_stats)(uint64_t *, uint64_t *);
        CUresult (*graph_busy)(CUgraphExec *, uint64_t);
        uint64_t (*device_used)(void);
        CUdeviceptr (*array_ptr)(CUarray);
};
extern struct cu cu;

static inline uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Count a failed check and say which, but go on: one run reports every failure. */
#define CHECK(failures, cond, ...)                                                      \
        do {                                                                            \
                if (!(cond)) {                                                          \
                        fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                   \
                        fputc('\n', stderr);                                            \
                        (failures)++;                                                   \
                }                                                                       \
        } while (0)

int tenant_load(void);
/* The tenant's slice: its own region, named by VGPU_SLICE_SHM, mapped on first use. */
struct slice *tenant_slice(void);
uint64_t tenant_slice_used(void);
/* Is p inside the shim / the fake driver (by the file dladdr names)? */
bool in_shim(const void *p);
bool in_driver(const void *p);
int tenant_resolve(void);
int tenant_requests(const char *path);
int tenant_memory(void);
int tenant_graph(void);
int tenant_twogpu(void);
int tenant_write_opaque(const char *kind, uint64_t bytes, int byte, bool free_it);
