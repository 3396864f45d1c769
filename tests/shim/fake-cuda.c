/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-cuda.c — the entry points of the fake CUDA driver, built as libcuda.so.1 for the shim's
 * tests (no GPU, no NVIDIA software): the CUDA driver ABI of the few calls the shim and the test
 * tenants use, on the simulated GPU of fake-gpu.c and the work queue of fake-queue.c.
 *
 * Resolution is modelled on the real driver so that the shim's can be tested:
 *   - cuGetProcAddress(_v2) honours the version: cuMemAlloc below 3020 is the 32-bit v1 ABI
 *     (which this 64-bit double answers with CUDA_ERROR_NOT_SUPPORTED), from 3020 on cuMemAlloc_v2;
 *     cuGetProcAddress itself is _v2 from 12000 on;
 *   - and the flags: PER_THREAD_DEFAULT_STREAM selects the _ptsz variants;
 *   - and, like a driver whose table holds internal functions, returns for cuMemAlloc and
 *     cuLaunchKernel_ptsz addresses that differ from what dlsym gives for the same ABI.
 * Each call records its ABI name (fakecu_last_call) so a test sees which variant ran.
 * Kernels: cuModuleGetFunction(.., "busy") gives a kernel whose first parameter is a uint64_t
 * of nanoseconds it holds the engine; fakecu_graph_busy makes a graph doing the same.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fake-cuda.h"

static __thread const char *last_call = "";

void fake_last_call(const char *name) {
        last_call = name;
}

const char *fakecu_last_call(void) {
        return last_call;
}

uint64_t fakecu_device_used(void) {
        return fake_gpu_mem_used();
}

/* ---- init, devices, contexts ---- */

struct CUctx_st {
        int dev;
};
static struct CUctx_st primary;
static _Atomic int primary_refs;
static __thread CUcontext current;
static __thread CUcontext stack[8];
static __thread unsigned depth;

CUresult cuInit(unsigned flags) {
        (void) flags;
        return fake_gpu_open() < 0 ? CUDA_ERROR_NOT_INITIALIZED : CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v) {
        *v = 12040;
        return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n) {
        *n = 1;
        return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal) {
        if (ordinal != 0)
                return CUDA_ERROR_INVALID_VALUE;
        *dev = 0;
        return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
        (void) dev;
        strncpy(name, "Fake GPU", (size_t) len);
        return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
        (void) dev;
        LAST("cuDeviceTotalMem_v2");
        *bytes = fake_gpu_mem_size();
        return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev) {
        (void) dev;
        atomic_fetch_add(&primary_refs, 1);
        *ctx = &primary;
        return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
        (void) dev;
        atomic_fetch_sub(&primary_refs, 1);
        return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
        (void) dev;
        LAST("cuDevicePrimaryCtxReset_v2");
        fake_queue_sync();
        fake_gpu_free_all_mine();
        return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
        current = ctx;
        return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *ctx) {
        *ctx = current;
        return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *dev) {
        if (!current)
                return CUDA_ERROR_INVALID_CONTEXT;
        *dev = 0;
        return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
        fake_queue_sync();
        return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
        if (depth == 8)
                return CUDA_ERROR_INVALID_VALUE;
        stack[depth++] = current;
        current = ctx;
        return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *ctx) {
        if (depth == 0)
                return CUDA_ERROR_INVALID_CONTEXT;
        if (ctx)
                *ctx = current;
        current = stack[--depth];
        return CUDA_SUCCESS;
}

CUresult cuCtxDestroy_v2(CUcontext ctx) {
        LAST("cuCtxDestroy_v2");
        fake_queue_sync();
        fake_gpu_free_all_mine();
        if (current == ctx)
                current = NULL;
        return CUDA_SUCCESS;
}

/* ---- streams, events, kernels ---- */

struct CUstream_st {
        int id;
};
struct CUfunc_st {
        const char *name;
};
struct CUgraphExec_st {
        uint64_t ns;
};
static struct CUfunc_st busy_kernel = { "busy" };

/* Any image loads; its kernels are all "busy" (bench/gpu/launch-latency runs here with 0 ns). */
CUresult cuModuleLoadData(void **module, const void *image) {
        (void) image;
        static int the_module;
        *module = &the_module;
        return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *f, void *module, const char *name) {
        (void) module, (void) name;
        *f = &busy_kernel;
        return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream *s, unsigned flags) {
        (void) flags;
        *s = calloc(1, sizeof(struct CUstream_st));
        return *s ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuStreamDestroy_v2(CUstream s) {
        LAST("cuStreamDestroy_v2");
        if (s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
                return CUDA_ERROR_INVALID_HANDLE;
        free(s);
        return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s) {
        (void) s;
        fake_queue_sync();
        return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *ev, unsigned flags) {
        (void) flags;
        *ev = calloc(1, sizeof(struct CUevent_st));
        return *ev ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuEventRecord(CUevent ev, CUstream s) {
        (void) s;
        if (!ev)
                return CUDA_ERROR_INVALID_HANDLE;
        fake_queue_event(ev);
        return CUDA_SUCCESS;
}

CUresult cuEventRecord_ptsz(CUevent ev, CUstream s) {
        return cuEventRecord(ev, s);
}

CUresult cuEventQuery(CUevent ev) {
        return atomic_load(&ev->done) >= atomic_load(&ev->recorded) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventSynchronize(CUevent ev) {
        fake_event_sync(ev);
        return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) {
        if (!atomic_load(&a->recorded) || !atomic_load(&b->recorded))
                return CUDA_ERROR_INVALID_HANDLE;
        if (cuEventQuery(a) != CUDA_SUCCESS || cuEventQuery(b) != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_READY;
        *ms = (float) ((double) ((int64_t) atomic_load(&b->stamp) - (int64_t) atomic_load(&a->stamp)) / 1e6);
        return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent ev) {
        fake_event_sync(ev);            /* the queue may still point at it */
        free(ev);
        return CUDA_SUCCESS;
}

static uint64_t kernel_ns(CUfunction f, void **params) {
        return f == &busy_kernel && params && params[0] ? *(const uint64_t *) params[0] : 0;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, CUstream s, void **params, void **extra) {
        (void) gx, (void) gy, (void) gz, (void) bx, (void) by, (void) bz, (void) shmem, (void) s, (void) extra;
        LAST("cuLaunchKernel");
        if (!f)
                return CUDA_ERROR_INVALID_HANDLE;
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

/* The per-thread variant, as the driver's table gives it; the exported symbol is a stub. */
CUresult launch_kernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                   unsigned bz, unsigned shmem, CUstream s, void **params, void **extra) {
        (void) gx, (void) gy, (void) gz, (void) bx, (void) by, (void) bz, (void) shmem, (void) s, (void) extra;
        LAST("cuLaunchKernel_ptsz");
        if (!f)
                return CUDA_ERROR_INVALID_HANDLE;
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned shmem, CUstream s, void **params, void **extra) {
        return launch_kernel_ptsz(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra);
}

CUresult cuLaunchKernelEx(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
        (void) c, (void) extra;
        LAST("cuLaunchKernelEx");
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *c, CUfunction f, void **params, void **extra) {
        (void) c, (void) extra;
        LAST("cuLaunchKernelEx_ptsz");
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                   unsigned bz, unsigned shmem, CUstream s, void **params) {
        (void) gx, (void) gy, (void) gz, (void) bx, (void) by, (void) bz, (void) shmem, (void) s;
        LAST("cuLaunchCooperativeKernel");
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                        unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params) {
        (void) gx, (void) gy, (void) gz, (void) bx, (void) by, (void) bz, (void) shmem, (void) s;
        LAST("cuLaunchCooperativeKernel_ptsz");
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

CUresult fakecu_graph_busy(CUgraphExec *ret, uint64_t ns) {
        struct CUgraphExec_st *g = malloc(sizeof(*g));
        if (!g)
                return CUDA_ERROR_OUT_OF_MEMORY;
        g->ns = ns;
        *ret = g;
        return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec g) {
        free(g);
        return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec g, CUstream s) {
        (void) s;
        LAST("cuGraphLaunch");
        fake_queue_kernel(g->ns);
        return CUDA_SUCCESS;
}

CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) {
        (void) s;
        LAST("cuGraphLaunch_ptsz");
        fake_queue_kernel(g->ns);
        return CUDA_SUCCESS;
}
