/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * launch-latency.c — host time of one cuLaunchKernel of an empty kernel, reached the way the CUDA
 * runtime reaches it (dlopen libcuda.so.1, cuGetProcAddress_v2), so that running it with and
 * without LD_PRELOAD=libvgpu-cuda.so gives the shim's cost per launch. Needs no CUDA toolkit: the
 * kernel is PTX, compiled by the driver. Launches go in bursts of 256 (well below the driver's
 * queue, so the host never waits for the GPU inside a burst), timed per burst; prints the median.
 *   cc -O2 -I shim bench/gpu/launch-latency.c -ldl -o launch-latency && ./launch-latency [BURSTS [SIZE]]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cuda-types.h"

static const char ptx[] =
        ".version 7.0\n.target sm_70\n.address_size 64\n.visible .entry empty()\n{\n\tret;\n}\n";

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv) {
        int bursts = argc > 1 ? atoi(argv[1]) : 2000, burst = argc > 2 ? atoi(argv[2]) : 256;
        void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                fprintf(stderr, "launch-latency: %s\n", dlerror());
                return 1;
        }
        PFN_cuGetProcAddress_v12000 gpa = (PFN_cuGetProcAddress_v12000) dlsym(lib, "cuGetProcAddress_v2");
        if (!gpa)
                return 1;
        void *p;
#define GET(type, name) (gpa(name, &p, 12000, 0, NULL) == CUDA_SUCCESS ? (type) p : (type) NULL)
        CUresult (*init)(unsigned) = GET(CUresult(*)(unsigned), "cuInit");
        CUresult (*retain)(CUcontext *, CUdevice) =
                GET(CUresult(*)(CUcontext *, CUdevice), "cuDevicePrimaryCtxRetain");
        CUresult (*set_current)(CUcontext) = GET(CUresult(*)(CUcontext), "cuCtxSetCurrent");
        CUresult (*load)(void **, const void *) = GET(CUresult(*)(void **, const void *), "cuModuleLoadData");
        CUresult (*get_function)(CUfunction *, void *, const char *) =
                GET(CUresult(*)(CUfunction *, void *, const char *), "cuModuleGetFunction");
        PFN_cuCtxSynchronize_v2000 sync = GET(PFN_cuCtxSynchronize_v2000, "cuCtxSynchronize");
        PFN_cuLaunchKernel_v4000 launch = GET(PFN_cuLaunchKernel_v4000, "cuLaunchKernel");
#undef GET
        CUcontext ctx;
        void *module;
        CUfunction f;
        if (!init || init(0) || retain(&ctx, 0) || set_current(ctx) || load(&module, ptx) ||
            get_function(&f, module, "empty")) {
                fprintf(stderr, "launch-latency: cannot set up the device\n");
                return 1;
        }
        double *per = malloc(sizeof(double) * (size_t) bursts);
        for (int b = -50; b < bursts; b++) { /* 50 bursts of warm-up */
                double t0 = now_us();
                for (int i = 0; i < burst; i++)
                        launch(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
                double t1 = now_us();
                sync();
                if (b >= 0)
                        per[b] = (t1 - t0) / burst;
        }
        qsort(per, (size_t) bursts, sizeof(double), cmp);
        printf("launch_us_median=%.3f launch_us_p10=%.3f launch_us_p90=%.3f bursts=%d\n", per[bursts / 2],
               per[bursts / 10], per[bursts * 9 / 10], bursts);
        free(per);
        return 0;
}
