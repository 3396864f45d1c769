/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cudart-probe — loads a CUDA runtime (the path of a libcudart.so in argv[1]) and initializes it
 * over whichever libcuda.so.1 the loader finds. Over the fake driver with FAKE_CUDA_TRACE set,
 * the trace is every driver entry point that runtime asks cuGetProcAddress for: it asks for all
 * of them, at the version and stream flags it will call, when it initializes. NVIDIA's runtime
 * then wants the driver's private export tables, which the fake has not got, so its
 * initialization fails after the lookups; that is expected and not an error here.
 * No CUDA header or library is needed to build it.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: cudart-probe LIBCUDART\n");
                return 2;
        }
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                fprintf(stderr, "cudart-probe: %s\n", dlerror());
                return 1;
        }
        int (*runtime_version)(int *) = (int (*)(int *)) dlsym(h, "cudaRuntimeGetVersion");
        int (*device_count)(int *) = (int (*)(int *)) dlsym(h, "cudaGetDeviceCount");
        int version = 0, n = 0;
        if (!runtime_version || !device_count || runtime_version(&version) != 0) {
                fprintf(stderr, "cudart-probe: %s is not a CUDA runtime\n", argv[1]);
                return 1;
        }
        /* A runtime refuses a driver older than itself before it looks anything up. */
        char v[16];
        snprintf(v, sizeof(v), "%d", version);
        setenv("FAKE_CUDA_VERSION", v, 1);
        int r = device_count(&n);
        printf("cudart %d: cudaGetDeviceCount returned %d\n", version, r);
        return 0;
}
