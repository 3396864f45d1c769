/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-vmm.c — the virtual memory management calls of the fake driver for cuMemCreate handles:
 * address ranges (cuMemAddressReserve / cuMemAddressFree), mappings of a handle into them
 * (cuMemMap / cuMemUnmap, translated by fake_gpu_host so that memset and memcpy reach the
 * handle's memory) and cuMemSetAccess (accepted, not enforced). As in the real driver, a handle
 * released while mapped keeps its memory until its last mapping is unmapped, and then returns it
 * uncleared, so a test sees whether the shim scrubbed it.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "fake-cuda.h"

#define MAPPINGS_MAX 64
#define RELEASED_MAX 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        CUdeviceptr va;
        size_t size;
        CUmemGenericAllocationHandle h;
        size_t offset;
} maps[MAPPINGS_MAX];
static unsigned n_maps;
static CUmemGenericAllocationHandle released[RELEASED_MAX]; /* released, waiting for their unmap */
static unsigned n_released;
static _Atomic uint64_t next_va = FAKE_VA_BASE;

CUdeviceptr fake_vmm_translate(CUdeviceptr p) {
        if (p < FAKE_VA_BASE)
                return p;
        CUdeviceptr r = p;
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < n_maps; i++)
                if (p >= maps[i].va && p < maps[i].va + maps[i].size)
                        r = maps[i].h + maps[i].offset + (p - maps[i].va);
        pthread_mutex_unlock(&lock);
        return r;
}

static bool mapped_locked(CUmemGenericAllocationHandle h) {
        for (unsigned i = 0; i < n_maps; i++)
                if (maps[i].h == h)
                        return true;
        return false;
}

bool fake_vmm_release(CUmemGenericAllocationHandle h) {
        pthread_mutex_lock(&lock);
        bool mapped = mapped_locked(h);
        if (mapped && n_released < RELEASED_MAX)
                released[n_released++] = h;
        pthread_mutex_unlock(&lock);
        return !mapped;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags) {
        (void) alignment, (void) addr, (void) flags;
        LAST("cuMemAddressReserve");
        if (!ptr || size == 0)
                return CUDA_ERROR_INVALID_VALUE;
        *ptr = atomic_fetch_add(&next_va, (size + 0xfffff) & ~(uint64_t) 0xfffff);
        return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
        (void) ptr, (void) size;
        LAST("cuMemAddressFree");
        return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle h,
                  unsigned long long flags) {
        (void) flags;
        LAST("cuMemMap");
        if (ptr < FAKE_VA_BASE || size == 0 || !fake_gpu_host(h + offset, size))
                return CUDA_ERROR_INVALID_VALUE;
        CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
        pthread_mutex_lock(&lock);
        if (n_maps < MAPPINGS_MAX) {
                maps[n_maps++] = (__typeof__(maps[0])){ ptr, size, h, offset };
                r = CUDA_SUCCESS;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
        (void) size;
        LAST("cuMemUnmap");
        fake_queue_sync(); /* like the driver: no work may still use the range */
        CUmemGenericAllocationHandle freed = 0;
        CUresult r = CUDA_ERROR_INVALID_VALUE;
        pthread_mutex_lock(&lock);
        for (unsigned i = 0; i < n_maps; i++)
                if (maps[i].va == ptr) {
                        CUmemGenericAllocationHandle h = maps[i].h;
                        maps[i] = maps[--n_maps];
                        r = CUDA_SUCCESS;
                        for (unsigned k = 0; !mapped_locked(h) && k < n_released; k++)
                                if (released[k] == h) {
                                        released[k] = released[--n_released];
                                        freed = h;
                                }
                        break;
                }
        pthread_mutex_unlock(&lock);
        if (freed)
                fake_gpu_free(freed);
        return r;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count) {
        LAST("cuMemSetAccess");
        if (ptr < FAKE_VA_BASE || size == 0 || !desc || count == 0)
                return CUDA_ERROR_INVALID_VALUE;
        return CUDA_SUCCESS;
}
