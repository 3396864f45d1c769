/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-memory.c — device memory calls of the fake driver: linear, pitched and managed
 * allocations, physical handles (mappings in fake-vmm.c), CUDA arrays and mipmapped arrays
 * (whose memory requirement is rounded up to 64 KiB, more than a naive width x height estimate,
 * as on real hardware), stream-ordered allocations from a pool that rounds its reservations up
 * to 2 MiB and keeps freed blocks until trimmed (also the devices' graph memory pools,
 * fake-graph.c; allocations on a capturing stream become graph nodes), and memset / memcpy. Every memset counts in the statistics (tests write with memcpy, so memsets
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
        return CUDA_ERROR_NOT_SUPPORTED; /* no 32-bit device addresses in this double */
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
        fake_queue_sync(); /* cuMemFree synchronizes, as the real one does */
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
        if (!fake_gpu_host(h, 1))
                return CUDA_ERROR_INVALID_HANDLE;
        if (!fake_vmm_release(h))
                return CUDA_SUCCESS; /* freed at its last unmap */
        return fake_gpu_free(h) < 0 ? CUDA_ERROR_INVALID_HANDLE : CUDA_SUCCESS;
}

/* ---- arrays ---- */

/* Elements are stored row by row, slice by slice (a linear layout: real arrays are tiled, which
 * a copy of whole elements cannot tell apart), in device memory rounded up to 64 KiB. */
struct CUarray_st {
        CUdeviceptr p;
        size_t size;
        CUDA_ARRAY3D_DESCRIPTOR desc;
        size_t elem; /* bytes per element, all channels */
};

static size_t format_size(int format) {
        switch (format) {
        case CU_AD_FORMAT_UNSIGNED_INT8:
        case CU_AD_FORMAT_SIGNED_INT8:
                return 1;
        case CU_AD_FORMAT_UNSIGNED_INT16:
        case CU_AD_FORMAT_SIGNED_INT16:
        case CU_AD_FORMAT_HALF:
                return 2;
        default:
                return 4;
        }
}

static CUresult array_create(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d) {
        if (!a || !d || d->Width == 0)
                return CUDA_ERROR_INVALID_VALUE;
        size_t elem = format_size(d->Format) * (d->NumChannels ? d->NumChannels : 1);
        uint64_t n = (uint64_t) d->Width * (d->Height ? d->Height : 1) * (d->Depth ? d->Depth : 1) * elem;
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
        arr->desc = *d;
        arr->elem = elem;
        *a = arr;
        return CUDA_SUCCESS;
}

CUresult cuArrayCreate_v2(CUarray *a, const CUDA_ARRAY_DESCRIPTOR *d) {
        LAST("cuArrayCreate_v2");
        if (!d)
                return CUDA_ERROR_INVALID_VALUE;
        CUDA_ARRAY3D_DESCRIPTOR d3 = {
                .Width = d->Width, .Height = d->Height, .Format = d->Format, .NumChannels = d->NumChannels
        };
        return array_create(a, &d3);
}

CUresult cuArray3DCreate_v2(CUarray *a, const CUDA_ARRAY3D_DESCRIPTOR *d) {
        LAST("cuArray3DCreate_v2");
        return array_create(a, d);
}

CUresult cuArrayDestroy(CUarray a) {
        LAST("cuArrayDestroy");
        if (!a)
                return CUDA_ERROR_INVALID_HANDLE;
        fake_gpu_free(a->p);
        free(a);
        return CUDA_SUCCESS;
}

CUdeviceptr fakecu_array_ptr(CUarray a) {
        return a ? a->p : 0;
}

CUresult cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR *d, CUarray a) {
        if (!d || !a)
                return CUDA_ERROR_INVALID_VALUE;
        *d = a->desc;
        return CUDA_SUCCESS;
}

/* Host <-> array and host <-> device copies (what the shim and the tests use). */
CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D *c) {
        LAST("cuMemcpy3D_v2");
        fake_queue_sync();
        if (!c || c->srcMemoryType != CU_MEMORYTYPE_HOST || !c->srcHost)
                return CUDA_ERROR_INVALID_VALUE;
        size_t h = c->Height ? c->Height : 1, d = c->Depth ? c->Depth : 1;
        size_t src_pitch = c->srcPitch ? c->srcPitch : c->WidthInBytes,
               src_height = c->srcHeight ? c->srcHeight : h;
        for (size_t z = 0; z < d; z++)
                for (size_t y = 0; y < h; y++) {
                        const char *src = (const char *) c->srcHost +
                                          ((c->srcZ + z) * src_height + c->srcY + y) * src_pitch +
                                          c->srcXInBytes;
                        void *dst;
                        if (c->dstMemoryType == CU_MEMORYTYPE_ARRAY) {
                                const struct CUarray_st *a = c->dstArray;
                                size_t row = a->desc.Width * a->elem,
                                       rows = a->desc.Height ? a->desc.Height : 1;
                                size_t slices = a->desc.Depth ? a->desc.Depth : 1;
                                if (c->dstXInBytes + c->WidthInBytes > row || c->dstY + y >= rows ||
                                    c->dstZ + z >= slices)
                                        return CUDA_ERROR_INVALID_VALUE;
                                dst = fake_gpu_host(a->p + ((c->dstZ + z) * rows + c->dstY + y) * row +
                                                            c->dstXInBytes,
                                                    c->WidthInBytes);
                        } else if (c->dstMemoryType == CU_MEMORYTYPE_DEVICE) {
                                size_t pitch = c->dstPitch ? c->dstPitch : c->WidthInBytes;
                                size_t height = c->dstHeight ? c->dstHeight : h;
                                dst = fake_gpu_host(c->dstDevice +
                                                            ((c->dstZ + z) * height + c->dstY + y) * pitch +
                                                            c->dstXInBytes,
                                                    c->WidthInBytes);
                        } else
                                return CUDA_ERROR_INVALID_VALUE;
                        if (!dst)
                                return CUDA_ERROR_INVALID_VALUE;
                        memcpy(dst, src, c->WidthInBytes);
                }
        return CUDA_SUCCESS;
}

/* Mipmapped arrays: level k halves every dimension of level k-1 (at least 1); each level is an array. */
struct CUmipmappedArray_st {
        unsigned levels;
        CUarray level[16];
};

CUresult cuMipmappedArrayCreate(CUmipmappedArray *m, const CUDA_ARRAY3D_DESCRIPTOR *d, unsigned int levels) {
        LAST("cuMipmappedArrayCreate");
        if (!m || !d || levels == 0 || levels > 16)
                return CUDA_ERROR_INVALID_VALUE;
        struct CUmipmappedArray_st *mm = calloc(1, sizeof(*mm));
        if (!mm)
                return CUDA_ERROR_OUT_OF_MEMORY;
        CUDA_ARRAY3D_DESCRIPTOR l = *d;
        CUresult r = CUDA_SUCCESS;
        for (unsigned k = 0; k < levels && r == CUDA_SUCCESS; k++) {
                r = array_create(&mm->level[k], &l);
                if (r == CUDA_SUCCESS)
                        mm->levels++;
                l.Width = l.Width > 1 ? l.Width / 2 : 1;
                l.Height = l.Height > 1 ? l.Height / 2 : l.Height;
                l.Depth = l.Depth > 1 ? l.Depth / 2 : l.Depth;
        }
        if (r != CUDA_SUCCESS) {
                cuMipmappedArrayDestroy(mm);
                return r;
        }
        *m = mm;
        return CUDA_SUCCESS;
}

CUresult cuMipmappedArrayDestroy(CUmipmappedArray m) {
        LAST("cuMipmappedArrayDestroy");
        if (!m)
                return CUDA_ERROR_INVALID_HANDLE;
        for (unsigned k = 0; k < m->levels; k++)
                cuArrayDestroy(m->level[k]);
        free(m);
        return CUDA_SUCCESS;
}

CUresult cuMipmappedArrayGetLevel(CUarray *a, CUmipmappedArray m, unsigned int level) {
        if (!a || !m || level >= m->levels)
                return CUDA_ERROR_INVALID_VALUE;
        *a = m->level[level];
        return CUDA_SUCCESS;
}

CUresult cuMipmappedArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *r, CUmipmappedArray m,
                                               CUdevice dev) {
        (void) dev;
        if (!r || !m)
                return CUDA_ERROR_INVALID_VALUE;
        *r = (CUDA_ARRAY_MEMORY_REQUIREMENTS){ .alignment = 65536 };
        for (unsigned k = 0; k < m->levels; k++)
                r->size += m->level[k]->size;
        return CUDA_SUCCESS;
}

CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *r, CUarray a, CUdevice dev) {
        (void) dev;
        *r = (CUDA_ARRAY_MEMORY_REQUIREMENTS){ .size = a->size, .alignment = 65536 };
        return CUDA_SUCCESS;
}

/* ---- the memory pool ---- */

#define POOL_BLOCKS 256
#define POOL_GRAIN  (UINT64_C(2) << 20)

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
/* The graph memory pool of each device (fake-graph.c): the same kind of pool. */
static struct CUmemPoolHandle_st graph_pools[FAKE_DEVICES_MAX] = {
        { .lock = PTHREAD_MUTEX_INITIALIZER },
        { .lock = PTHREAD_MUTEX_INITIALIZER },
        { .lock = PTHREAD_MUTEX_INITIALIZER },
        { .lock = PTHREAD_MUTEX_INITIALIZER },
};

struct CUmemPoolHandle_st *fake_graph_pool(int dev) {
        return dev >= 0 && dev < FAKE_DEVICES_MAX ? &graph_pools[dev] : NULL;
}

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

CUresult fake_pool_back(struct CUmemPoolHandle_st *pool, CUdeviceptr p, size_t n, CUdeviceptr *ret) {
        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; p && i < pool->n; i++)
                if (pool->b[i].p == p && pool->b[i].size >= n) {
                        pool->b[i].used = true;
                        *ret = p;
                        pthread_mutex_unlock(&pool->lock);
                        return CUDA_SUCCESS;
                }
        pthread_mutex_unlock(&pool->lock);
        return pool_alloc(pool, ret, n);
}

void fake_pool_release(struct CUmemPoolHandle_st *pool, CUdeviceptr p) {
        pthread_mutex_lock(&pool->lock);
        for (unsigned i = 0; i < pool->n; i++)
                if (pool->b[i].p == p)
                        pool->b[i].used = false;
        pthread_mutex_unlock(&pool->lock);
}

static CUresult pool_free(CUdeviceptr p) {
        fake_queue_pool_free(&pool0, p); /* in stream order, after earlier work */
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

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value) {
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
        LAST("cuMemAllocAsync");
        if (fake_capturing(s)) {
                if (!dptr || n == 0)
                        return CUDA_ERROR_INVALID_VALUE;
                *dptr = fake_capture_alloc(s, n); /* an allocation node: no memory yet */
                return CUDA_SUCCESS;
        }
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
        LAST("cuMemFreeAsync");
        if (fake_capturing(s)) {
                fake_capture_free(s, p);
                return CUDA_SUCCESS;
        }
        return pool_free(p);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) {
        (void) s;
        LAST("cuMemFreeAsync_ptsz");
        return pool_free(p);
}
