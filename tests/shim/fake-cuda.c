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
 * of nanoseconds it holds the engine. Devices: $FAKE_CUDA_DEVICES (default 1), one primary
 * context each, on PCI bus N of domain 0; they share one memory. Graphs are in fake-graph.c.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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
static struct CUctx_st primary[FAKE_DEVICES_MAX] = { { 0 }, { 1 }, { 2 }, { 3 } };
static _Atomic int primary_refs;
static __thread CUcontext current;
static __thread CUcontext stack[8];
static __thread unsigned depth;

CUresult cuInit(unsigned flags) {
        (void) flags;
        return fake_gpu_open() < 0 ? CUDA_ERROR_NOT_INITIALIZED : CUDA_SUCCESS;
}

/* 12.4 unless FAKE_CUDA_VERSION says otherwise (a CUDA runtime refuses a driver older than itself). */
CUresult cuDriverGetVersion(int *v) {
        const char *s = getenv("FAKE_CUDA_VERSION");
        *v = s && atoi(s) > 0 ? atoi(s) : 12040;
        return CUDA_SUCCESS;
}

int fake_device_count(void) {
        const char *s = getenv("FAKE_CUDA_DEVICES");
        int n = s ? atoi(s) : 1;
        return n < 1 ? 1 : n > FAKE_DEVICES_MAX ? FAKE_DEVICES_MAX : n;
}

CUresult cuDeviceGetCount(int *n) {
        *n = fake_device_count();
        return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal) {
        if (ordinal < 0 || ordinal >= fake_device_count())
                return CUDA_ERROR_INVALID_DEVICE;
        *dev = ordinal;
        return CUDA_SUCCESS;
}

/* Device d sits on bus d of domain 0: 0000:00:00.0, 0000:01:00.0, ... (upper case, like the
 * driver), or where $FAKE_CUDA_BUSIDS ("0000:3b:00.0,0000:5e:00.0") puts it: tests that make a
 * slice on a fixture host's GPU place the fake device at that GPU's address, as on a real host. */
CUresult cuDeviceGetPCIBusId(char *bus_id, int len, CUdevice dev) {
        if (!bus_id || len < 13 || dev < 0 || dev >= fake_device_count())
                return CUDA_ERROR_INVALID_VALUE;
        const char *ids = getenv("FAKE_CUDA_BUSIDS");
        for (int i = 0; ids && *ids && i < dev; i++)
                ids = strchr(ids, ',') ? strchr(ids, ',') + 1 : "";
        if (ids && *ids) {
                int n = 0;
                for (; ids[n] && ids[n] != ',' && n < len - 1; n++)
                        bus_id[n] = (char) toupper((unsigned char) ids[n]);
                bus_id[n] = '\0';
                return CUDA_SUCCESS;
        }
        snprintf(bus_id, (size_t) len, "0000:%02X:00.0", (unsigned) dev);
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
        if (dev < 0 || dev >= fake_device_count())
                return CUDA_ERROR_INVALID_DEVICE;
        atomic_fetch_add(&primary_refs, 1);
        *ctx = &primary[dev];
        return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
        (void) dev;
        atomic_fetch_sub(&primary_refs, 1);
        return CUDA_SUCCESS;
}

static CUresult primary_reset(const char *abi) {
        LAST(abi);
        fake_queue_sync();
        fake_gpu_free_all_mine();
        return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
        (void) dev;
        return primary_reset("cuDevicePrimaryCtxReset_v2");
}

/* The 7000 ABI, which NVIDIA's cudart 13 still asks for. */
CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
        (void) dev;
        return primary_reset("cuDevicePrimaryCtxReset");
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
        *dev = current->dev;
        return CUDA_SUCCESS;
}

int fake_current_device(void) {
        return current ? current->dev : -1;
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

struct CUfunc_st {
        const char *name;
};
static struct CUfunc_st busy_kernel = { "busy" };

/* Any image loads; its kernels are all "busy" (bench/gpu/launch-latency runs here with 0 ns). */
CUresult cuModuleLoadData(CUmodule *module, const void *image) {
        (void) image;
        *module = (CUmodule) &busy_kernel; /* opaque to the caller: any non-NULL handle */
        return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *f, CUmodule module, const char *name) {
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
        fake_event_sync(ev); /* the queue may still point at it */
        free(ev);
        return CUDA_SUCCESS;
}

static uint64_t kernel_ns(CUfunction f, void **params) {
        return f == &busy_kernel && params && params[0] ? *(const uint64_t *) params[0] : 0;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shmem, CUstream s, void **params, void **extra) {
        (void) gx, (void) gy, (void) gz, (void) bx, (void) by, (void) bz, (void) shmem, (void) extra;
        LAST("cuLaunchKernel");
        if (!f)
                return CUDA_ERROR_INVALID_HANDLE;
        if (fake_capturing(s)) {
                fake_capture_kernel(s, kernel_ns(f, params));
                return CUDA_SUCCESS;
        }
        fake_queue_kernel(kernel_ns(f, params));
        return CUDA_SUCCESS;
}

/* The per-thread variant, as the driver's table gives it; the exported symbol is a stub. */
CUresult launch_kernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                            unsigned bz, unsigned shmem, CUstream s, void **params, void **extra) {
        (void) gx, (void) gy, (void) gz, (void) bx, (void) by, (void) bz, (void) shmem, (void) s,
                (void) extra;
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

CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                   unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params) {
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
