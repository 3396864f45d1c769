/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scrub.c — clearing device memory before it leaves the slice, so that the next tenant given
 * the same memory never reads this one's data; and giving everything back at context teardown
 * and process exit.
 *   on-free   every cuMemFree / cuMemFreeAsync clears the block first (cuMemsetD8, in stream
 *             order for async frees), and teardown / exit clear what is still allocated;
 *   on-exit   only teardown / exit clear (frameworks with caching allocators rarely free before
 *             that); async frees are still cleared, see pool.c;
 *   off       nothing.
 * cuMemCreate handles and arrays are cleared the same way, by the means of scrub-opaque.c. Not
 * cleared by the shim: memory of a process killed with SIGKILL (it runs no code; the driver
 * frees it).
 */
#include "shim.h"

void shim_scrub(CUdeviceptr ptr, uint64_t bytes, bool async, CUstream stream) {
        if (bytes == 0)
                return;
        CUresult r;
        if (async) {
                shim_pfn_cuMemsetD8Async set = REAL(cuMemsetD8Async);
                r = set ? set(ptr, 0, bytes, stream) : CUDA_ERROR_NOT_INITIALIZED;
        } else {
                shim_pfn_cuMemsetD8_v2 set = REAL(cuMemsetD8_v2);
                r = set ? set(ptr, 0, bytes) : CUDA_ERROR_NOT_INITIALIZED;
        }
        if (r != CUDA_SUCCESS)
                shim_log(SHIM_LOG_WARNING, "cannot scrub %llu bytes at 0x%llx: CUDA error %d",
                         (unsigned long long) bytes, (unsigned long long) ptr, r);
}

#define CTXS_MAX 8

struct release {
        bool scrub;
        CUcontext current;
        CUcontext ctxs[CTXS_MAX]; /* contexts written to, synchronized at the end */
        unsigned n_ctxs;
};

static bool in_current(struct release *rel, CUcontext ctx) {
        return !ctx || ctx == rel->current;
}

static void release_one(const struct shim_alloc *a, void *userdata) {
        struct release *rel = userdata;
        bool opaque = a->kind == ALLOC_ARRAY || a->kind == ALLOC_MIPMAP;
        if (rel->scrub && (opaque || a->bytes)) {
                bool push = !in_current(rel, a->ctx);
                if (!push || REAL(cuCtxPushCurrent_v2)(a->ctx) == CUDA_SUCCESS) {
                        shim_scrub_alloc(a);
                        unsigned i;
                        for (i = 0; i < rel->n_ctxs && rel->ctxs[i] != a->ctx; i++)
                                ;
                        if (i == rel->n_ctxs && i < CTXS_MAX)
                                rel->ctxs[rel->n_ctxs++] = a->ctx;
                        if (push) {
                                CUcontext dummy;
                                REAL(cuCtxPopCurrent_v2)(&dummy);
                        }
                }
        }
        shim_uncharge(a->charged);
}

void shim_release_all(CUcontext ctx) {
        if (shim.mode != SHIM_ON || !shim_cuda_ready())
                return;
        struct release rel = { .scrub = shim.scrub != SLICE_SCRUB_OFF };
        if (REAL(cuCtxGetCurrent)(&rel.current) != CUDA_SUCCESS)
                rel.current = NULL;
        shim_track_drain(ctx, release_one, &rel);
        /* The clears must have run before the context (or the process) goes away. */
        for (unsigned i = 0; i < rel.n_ctxs; i++) {
                bool push = !in_current(&rel, rel.ctxs[i]);
                if (push && REAL(cuCtxPushCurrent_v2)(rel.ctxs[i]) != CUDA_SUCCESS)
                        continue;
                REAL(cuCtxSynchronize)();
                if (push) {
                        CUcontext dummy;
                        REAL(cuCtxPopCurrent_v2)(&dummy);
                }
        }
}

CUresult shim_cuCtxDestroy_v2(CUcontext ctx) {
        shim_pfn_cuCtxDestroy_v2 real = REAL(cuCtxDestroy_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (ctx) {
                shim_turn_exit();
                shim_release_all(ctx);
        }
        return real(ctx);
}
SHIM_EXPORT(cuCtxDestroy_v2);

/* A primary context reset frees everything in it: released (scrubbed) here first. Both ABIs:
 * NVIDIA's cudart 13 still asks cuGetProcAddress for the 7000 one (cudaDeviceReset). */
static CUresult primary_reset(enum shim_fn fn, CUdevice dev) {
        shim_pfn_cuDevicePrimaryCtxReset_v2 real = (shim_pfn_cuDevicePrimaryCtxReset_v2) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        shim_pfn_cuDevicePrimaryCtxRetain retain = REAL(cuDevicePrimaryCtxRetain);
        shim_pfn_cuDevicePrimaryCtxRelease_v2 release = REAL(cuDevicePrimaryCtxRelease_v2);
        CUcontext primary = NULL;
        if (shim.mode == SHIM_ON && retain && release && retain(&primary, dev) == CUDA_SUCCESS) {
                shim_turn_exit();
                shim_release_all(primary);
                release(dev);
        }
        return real(dev);
}

CUresult shim_cuDevicePrimaryCtxReset_v2(CUdevice dev) {
        return primary_reset(FN_cuDevicePrimaryCtxReset_v2, dev);
}
SHIM_EXPORT(cuDevicePrimaryCtxReset_v2);

CUresult shim_cuDevicePrimaryCtxReset(CUdevice dev) {
        return primary_reset(FN_cuDevicePrimaryCtxReset, dev);
}
SHIM_EXPORT(cuDevicePrimaryCtxReset);
