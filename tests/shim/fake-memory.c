/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-memory.c — device memory calls of the fake driver: linear, pitched and managed
 * allocations, physical handles, CUDA arrays (whose memory requirement is rounded up to 64 KiB,
 * more than a naive width x height estimate, as on real hardware), stream-ordered allocations
 * from a pool that rounds its reservations up to 2 MiB and keeps freed blocks until trimmed, and
 * memset / memcpy. Every memset counts in the statistics (tests write with memcpy, so memsets
 * are the shim's scrubs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fake-cuda.h"

static CUresult from_errno(int r) {
        return r == -ENOMEM ? CUDA_ERROR_OUT_OF_MEMORY : r < 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CUresult cuMemAlloc(unsigned int *dptr, unsigned int bytesize) {
        (void) dptr, (void) bytesize;
        LAST("cuMemAlloc");
        return CUDA_ERROR_NOT_SUPPORTED;        /* no 32-bit device addresses in this double */
}

CUresult mem_alloc_v2(CUdeviceptr *dptr, size_t bytesize) {
        LAST("cuMemAlloc_v2");
        if (!dptr || bytesize == 0)
                return CUDA_ERROR_INVALID_VALUE;
        return from_errno(fake_gpu_alloc(bytesize, dptr));
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
        return mem_alloc_v2(dptr, bytesize);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height, unsigned elem) {
        (void) elem;
        LAST("cuMemAllocPitch_v2");
        if (!dptr || !pitch || !width || !height)
                return CUDA_ERROR_INVALID_VALUE;
        size_t p = (width + 511) / 512 * 512;
        CUresult r = from_errno(fake_gpu_alloc((uint64_t) p * height, dptr));
        if (r == CUDA_SUCCESS)
                *pitch = p;
        return r;
}

CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned flags) {
        (void) flags;
        LAST("cuMemAllocManaged");
        if (!dptr || bytesize == 0)
                return CUDA_ERROR_INVALID_VALUE;
        return from_errno(fake_gpu_alloc(bytesize, dptr));
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
        LAST("cuMemFree_v2");
        fake_queue_sync();              /* cuMemFree synchronizes, as the real one does */
        return fake_gpu_free(dptr) < 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
        LAST("cuMemGetInfo_v2");
        uint64_t size = fake_gpu_mem_size(), used = fake_gpu_mem_used();
        *free_bytes = used < size ? size - used : 0;
        *total = size;
        return CUDA_SUCCESS;
}

CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) {
        fake_queue_sync();
        void *h = fake_gpu_host(p, n);
        if (!h)
                return CUDA_ERROR_INVALID_VALUE;
        memset(h, v, n);
        fake_stats_memset(n);
        return CUDA_SUCCESS;
}

CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream s) {
        (void) s;
        if (!fake_gpu_host(p, n))
                return CUDA_ERROR_INVALID_VALUE;
        fake_queue_memset(p, v, n);
        return CUDA_SUCCESS;
}

CUresult cuMemsetD8Async_ptsz(CUdeviceptr p, unsigned char v, size_t n, CUstream s) {
        return cuMemsetD8Async(p, v, n, s);
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
        fake_queue_sync();
        void *h = fake_gpu_host(dst, n);
        if (!h)
                return CUDA_ERROR_INVALID_VALUE;
        memcpy(h, src, n);
        return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
        fake_queue_sync();
        const void *h = fake_gpu_host(src, n);
        if (!h)
                return CUDA_ERROR_INVALID_VALUE;
        memcpy(dst, h, n);
        return CUDA_SUCCESS;
}

/* Physical handles: device memory (the handle is its address); host locations take none. */
#define HOST_HANDLE UINT64_C(0x8000000000000000)
static _Atomic uint64_t host_handles;

CUresult cuMemCreate(CUmemGenericAllocationHandle *h, size_t size, const CUmemAllocationProp *prop,
                     unsigned long long flags) {
        (void) flags;
        LAST("cuMemCreate");
        if (!h || !prop || size == 0)
                return CUDA_ERROR_INVALID_VALUE;
        if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
                *h = HOST_HANDLE | atomic_fetch_add(&host_handles, 1);
                return CUDA_SUCCESS;
        }
        CUdeviceptr p;
        CUresult r = from_errno(fake_gpu_alloc(size, &p));
        if (r == CUDA_SUCCESS)
                *h = p;
        return r;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle h) {
        LAST("cuMemRelease");
        if (h & HOST_HANDLE)
                return CUDA_SUCCESS;
        return fake_gpu_free(h) < 0 ? CUDA_ERROR_INVALID_HANDLE : CUDA_SUCCESS;
}

/* ---- arrays ---- */

struct CUarray_st {
        CUdeviceptr p;
        size_t size;
};

static CUresult array_create(CUarray *a, size_t w, size_t h, size_t d, unsigned channels) {
        /* 4 bytes per element whatever the format, rounded up to 64 KiB. */
        uint64_t n = (uint64_t) (w ? w : 1) * (h ? h : 1) * (d ? d : 1) * 4 * (channels ? channels : 1);
        n = (n + 65535) / 65536 * 65536;
        struct CUarray_st *arr = calloc(1, sizeof(*arr));
        if (!arr)
                return CUDA_ERROR_OUT_OF_MEMORY;
        CUresult r = from_errno(fake_gpu_alloc(n, &arr->p));
        if (r != CUDA_SUCCESS) {
                free(arr);
                return r;
        }
        arr->size = n;
        *a = arr;
        return CUDA_SUCCESS;
}

CUresult cuArrayCreate_v2(CUarray *a, const CUDA_ARRAY_DESCRIPTOR *d) {
        LAST("cuArrayCreate_v2");
        return array_create(a, d->Width, d->Height, 1, d->NumChannels);
}

CUresult cuArray3DCreate_v2(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d) {
        LAST("cuArray3DCreate_v2");
        return array_create(a, d->Width, d->Height, d->Depth, d->NumChannels);
}

CUresult cuArrayDestroy(CUarray a) {
        LAST("cuArrayDestroy");
        if (!a)
                return CUDA_ERROR_INVALID_HANDLE;
        fake_gpu_free(a->p);
        free(a);
        return CUDA_SUCCESS;
}

CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *r, CUarray a, CUdevice dev) {
        (void) dev;
        *r = (CUDA_ARRAY_MEMORY_REQUIREMENTS) { .size = a->size, .alignment = 65536 };
        return CUDA_SUCCESS;
}

/* ---- the memory pool ---- */

#define POOL_BLOCKS 256
#define POOL_GRAIN (UINT64_C(2) << 20)

struct CUmemPoolHandle_st {
        pthread_mutex_t lock;
        struct {
                CUdeviceptr p;
                uint64_t size;
                bool used;
        } b[POOL_BLOCKS];
        unsigned n;
};
static struct CUmemPoolHandle_st pool0 = { .lock = PTHREAD_MUTEX_INITIALIZER };

CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev) {
        (void) dev;
        *pool = &pool0;
        return CUDA_SUCCESS;
}

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice dev) {
        return cuDeviceGetMemPool(pool, dev);
}

static CUresult pool_alloc(CUmemoryPool pool, CUdeviceptr *dptr, size_t n) {
        if (!pool || !dptr || n == 0)
                return CUDA_ERROR_INVALID_VALUE;
        CUresult r = CUDA_SUCCESS;
        pthread_mutex_lock(&pool->lock);
        unsigned i;
        for (i = 0; i < pool->n; i++)
                if (!pool->b[i].used && pool->b[i].size >= n)
                        break;
        if (i == pool->n) {
                uint64_t size = (n + POOL_GRAIN - 1) / POOL_GRAIN * POOL_GRAIN;
                if (pool->n == POOL_BLOCKS)
                        r = CUDA_ERROR_OUT_OF_MEMORY;
                else
                        r = from_errno(fake_gpu_alloc(size, &pool->b[i].p));
                if (r == CUDA_SUCCESS) {
                        pool->b[i].size = size;
                        pool->n++;
                }
        }
        if (r == CUDA_SUCCESS) {
                pool->b[i].used = true;
                *dptr = pool->b[i].p;
        }
        pthread_mutex_unlock(&pool->lock);
        return r;
}

void fake_pool_release(struct CUmemPoolHandle_st *pool, CUdeviceptr p) {
        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; i < pool->n; i++)
                if (pool->b[i].p == p)
                        pool->b[i].used = false;
        pthread_mutex_unlock(&pool->lock);
}

static CUresult pool_free(CUdeviceptr p) {
        fake_queue_pool_free(&pool0, p);        /* in stream order, after earlier work */
        return CUDA_SUCCESS;
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t keep) {
        LAST("cuMemPoolTrimTo");
        pthread_mutex_lock(&pool->lock);
        uint64_t reserved = 0;
        for (unsigned i = 0; i < pool->n; i++)
                reserved += pool->b[i].size;
        for (unsigned i = 0; i < pool->n && reserved > keep;) {
                if (pool->b[i].used) {
                        i++;
                        continue;
                }
                reserved -= pool->b[i].size;
                fake_gpu_free(pool->b[i].p);
                pool->b[i] = pool->b[--pool->n];
        }
        pthread_mutex_unlock(&pool->lock);
        return CUDA_SUCCESS;
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, int attr, void *value) {
        uint64_t sum = 0;
        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; i < pool->n; i++)
                if (attr == CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT || pool->b[i].used)
                        sum += pool->b[i].size;
        pthread_mutex_unlock(&pool->lock);
        if (attr != CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT && attr != CU_MEMPOOL_ATTR_USED_MEM_CURRENT)
                return CUDA_ERROR_INVALID_VALUE;
        *(cuuint64_t *) value = sum;
        return CUDA_SUCCESS;
}

CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t n, CUstream s) {
        (void) s;
        LAST("cuMemAllocAsync");
        return pool_alloc(&pool0, dptr, n);
}

CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t n, CUstream s) {
        (void) s;
        LAST("cuMemAllocAsync_ptsz");
        return pool_alloc(&pool0, dptr, n);
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream s) {
        (void) s;
        LAST("cuMemAllocFromPoolAsync");
        return pool_alloc(pool, dptr, n);
}

CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream s) {
        (void) s;
        LAST("cuMemAllocFromPoolAsync_ptsz");
        return pool_alloc(pool, dptr, n);
}

CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s) {
        (void) s;
        LAST("cuMemFreeAsync");
        return pool_free(p);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) {
        (void) s;
        LAST("cuMemFreeAsync_ptsz");
        return pool_free(p);
}
