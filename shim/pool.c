/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool.c — stream-ordered allocations (cuMemAllocAsync, cuMemAllocFromPoolAsync, cuMemFreeAsync
 * and their _ptsz variants), charged by what their memory pool holds from the device rather than
 * by allocation: a pool keeps freed memory reserved (up to its release threshold), and that
 * memory is as unavailable to other tenants as memory in use.
 *
 * Before an allocation the pool's reserved size is re-read and the request reserved against the
 * quota; over the quota the pool is trimmed to what it uses (its cached memory goes back to the
 * device) and the reservation tried again, so cached memory never causes a false out-of-memory.
 * After the allocation the pool's charge is moved to its new reserved size. The pool's own lock
 * (one per process) keeps the read-allocate-read sequence of concurrent threads apart.
 */
#include "shim.h"

#define POOLS_MAX 16

struct pool_rec {
        CUmemoryPool pool;
        uint64_t charged;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_rec pools[POOLS_MAX];
static unsigned n_pools;
static __thread bool holding; /* this thread holds pool_lock: a charge must not trim */

static void pools_lock(void) {
        pthread_mutex_lock(&pool_lock);
        holding = true;
}

static void pools_unlock(void) {
        holding = false;
        pthread_mutex_unlock(&pool_lock);
}

static uint64_t pool_reserved(CUmemoryPool pool) {
        shim_pfn_cuMemPoolGetAttribute get = REAL(cuMemPoolGetAttribute);
        cuuint64_t v = 0;
        if (!get || get(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v) != CUDA_SUCCESS)
                return 0;
        return v;
}

static struct pool_rec *pool_find(CUmemoryPool pool) {
        for (unsigned i = 0; i < n_pools; i++)
                if (pools[i].pool == pool)
                        return &pools[i];
        if (n_pools == POOLS_MAX)
                return NULL;
        pools[n_pools] = (struct pool_rec){ .pool = pool };
        return &pools[n_pools++];
}

/* Charge the pool exactly what it reserves now (more if the quota allows: never refused). */
static void rec_sync(struct pool_rec *rec) {
        uint64_t reserved = pool_reserved(rec->pool);
        if (reserved < rec->charged) {
                shim_uncharge(rec->charged - reserved);
                rec->charged = reserved;
        } else if (reserved > rec->charged) {
                uint64_t c;
                if (shim_charge(reserved - rec->charged, &c) == CUDA_SUCCESS)
                        rec->charged += c;
        }
}

void shim_pools_sync(void) {
        if (shim.mode != SHIM_ON)
                return;
        pools_lock();
        for (unsigned i = 0; i < n_pools; i++)
                rec_sync(&pools[i]);
        pools_unlock();
}

void shim_pools_trim(void) {
        if (shim.mode != SHIM_ON || holding)
                return;
        shim_pfn_cuMemPoolTrimTo trim = REAL(cuMemPoolTrimTo);
        pools_lock();
        for (unsigned i = 0; trim && i < n_pools; i++) {
                trim(pools[i].pool, 0);
                rec_sync(&pools[i]);
        }
        pools_unlock();
}

static CUmemoryPool current_pool(void) {
        shim_pfn_cuCtxGetDevice get_dev = REAL(cuCtxGetDevice);
        shim_pfn_cuDeviceGetMemPool get_pool = REAL(cuDeviceGetMemPool);
        CUdevice dev;
        CUmemoryPool pool = NULL;
        if (get_dev && get_pool && get_dev(&dev) == CUDA_SUCCESS && get_pool(&pool, dev) != CUDA_SUCCESS)
                pool = NULL;
        return pool;
}

/* Reserve n for rec's pool, trimming its cache once if the quota is short. */
static CUresult reserve(struct pool_rec *rec, uint64_t n, uint64_t *ret_charged) {
        CUresult r = shim_charge(n, ret_charged);
        if (r != CUDA_ERROR_OUT_OF_MEMORY || !rec)
                return r;
        shim_pfn_cuMemPoolTrimTo trim = REAL(cuMemPoolTrimTo);
        if (!trim || trim(rec->pool, 0) != CUDA_SUCCESS)
                return r;
        rec_sync(rec);
        shim_log(SHIM_LOG_DEBUG, "pool trimmed to %llu bytes to make room",
                 (unsigned long long) rec->charged);
        return shim_charge(n, ret_charged);
}

/* An allocation captured into a graph takes no memory now: it becomes an allocation node, backed
 * (and charged, graph.c) when the graph is launched. */
static bool capturing(CUstream stream, enum shim_fn fn) {
        bool per_thread = fn == FN_cuMemAllocAsync_ptsz || fn == FN_cuMemAllocFromPoolAsync_ptsz;
        shim_pfn_cuStreamIsCapturing is = (shim_pfn_cuStreamIsCapturing) shim_real_get(
                per_thread ? FN_cuStreamIsCapturing_ptsz : FN_cuStreamIsCapturing);
        CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
        return is && is(stream, &status) == CUDA_SUCCESS && status != CU_STREAM_CAPTURE_STATUS_NONE;
}

/* One stream-ordered allocation; pool NULL: the device's current pool. call does the real work. */
static CUresult alloc_async(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream stream,
                            CUresult (*call)(CUdeviceptr *, size_t, CUmemoryPool, CUstream, enum shim_fn),
                            enum shim_fn fn) {
        if (shim.mode == SHIM_OFF || !dptr || capturing(stream, fn))
                return call(dptr, n, pool, stream, fn);
        pools_lock();
        struct pool_rec *rec = NULL;
        CUmemoryPool p = pool ? pool : current_pool();
        if (p) {
                rec = pool_find(p);
                if (rec)
                        rec_sync(rec);
        }
        uint64_t held = 0;
        CUresult r = reserve(rec, n, &held);
        if (r == CUDA_SUCCESS)
                r = call(dptr, n, pool, stream, fn);
        if (r != CUDA_SUCCESS) {
                shim_uncharge(held);
                pools_unlock();
                return r;
        }
        uint64_t charged = held; /* what the allocation itself keeps (no pool known) */
        if (rec) {
                /* The pool grew by at most what we hold, or more: settle the pool's charge. */
                uint64_t reserved = pool_reserved(rec->pool), have = rec->charged + held, extra;
                if (reserved > have) {
                        if (shim_charge(reserved - have, &extra) != CUDA_SUCCESS) {
                                REAL(cuMemFreeAsync)(*dptr, stream);
                                shim_pfn_cuMemPoolTrimTo trim = REAL(cuMemPoolTrimTo);
                                if (trim)
                                        trim(rec->pool, 0);
                                shim_uncharge(held);
                                rec_sync(rec);
                                pools_unlock();
                                return CUDA_ERROR_OUT_OF_MEMORY;
                        }
                        have += extra;
                } else {
                        shim_uncharge(have - reserved);
                        have = reserved;
                }
                rec->charged = have;
                charged = 0;
        }
        pools_unlock();

        shim_register_exit();
        struct shim_alloc a = {
                .space = SPACE_PTR, .key = *dptr, .kind = ALLOC_ASYNC, .charged = charged, .bytes = n
        };
        if (shim_track_add(&a) < 0) {
                REAL(cuMemFreeAsync)(*dptr, stream);
                shim_uncharge(charged);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        return CUDA_SUCCESS;
}

static CUresult call_alloc(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream stream, enum shim_fn fn) {
        (void) pool;
        shim_pfn_cuMemAllocAsync real = (shim_pfn_cuMemAllocAsync) shim_real_get(fn);
        return real ? real(dptr, n, stream) : CUDA_ERROR_NOT_INITIALIZED;
}

static CUresult call_alloc_pool(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream stream,
                                enum shim_fn fn) {
        shim_pfn_cuMemAllocFromPoolAsync real = (shim_pfn_cuMemAllocFromPoolAsync) shim_real_get(fn);
        return real ? real(dptr, n, pool, stream) : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult shim_cuMemAllocAsync(CUdeviceptr *dptr, size_t n, CUstream stream) {
        return alloc_async(dptr, n, NULL, stream, call_alloc, FN_cuMemAllocAsync);
}
SHIM_EXPORT(cuMemAllocAsync);

CUresult shim_cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t n, CUstream stream) {
        return alloc_async(dptr, n, NULL, stream, call_alloc, FN_cuMemAllocAsync_ptsz);
}
SHIM_EXPORT(cuMemAllocAsync_ptsz);

CUresult shim_cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream stream) {
        if (!pool)
                return call_alloc_pool(dptr, n, pool, stream, FN_cuMemAllocFromPoolAsync);
        return alloc_async(dptr, n, pool, stream, call_alloc_pool, FN_cuMemAllocFromPoolAsync);
}
SHIM_EXPORT(cuMemAllocFromPoolAsync);

CUresult shim_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t n, CUmemoryPool pool, CUstream stream) {
        if (!pool)
                return call_alloc_pool(dptr, n, pool, stream, FN_cuMemAllocFromPoolAsync_ptsz);
        return alloc_async(dptr, n, pool, stream, call_alloc_pool, FN_cuMemAllocFromPoolAsync_ptsz);
}
SHIM_EXPORT(cuMemAllocFromPoolAsync_ptsz);

static CUresult free_async(CUdeviceptr dptr, CUstream stream, enum shim_fn fn, bool per_thread) {
        shim_pfn_cuMemFreeAsync real = (shim_pfn_cuMemFreeAsync) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        struct shim_alloc a;
        if (shim.mode == SHIM_OFF || !shim_track_take(SPACE_PTR, dptr, &a))
                return real(dptr, stream);
        /* Scrubbed in stream order even under on-exit: once back in the pool the block is no
         * longer ours to find at exit, yet the pool may hand it to the device at any sync. */
        if (shim.scrub != SLICE_SCRUB_OFF)
                shim_scrub(dptr, a.bytes, true, per_thread && !stream ? CU_STREAM_PER_THREAD : stream);
        CUresult r = real(dptr, stream);
        if (r == CUDA_SUCCESS || shim_track_add(&a) < 0)
                shim_uncharge(a.charged); /* 0 for pool-charged blocks: the pool keeps them */
        return r;
}

CUresult shim_cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
        return free_async(dptr, stream, FN_cuMemFreeAsync, false);
}
SHIM_EXPORT(cuMemFreeAsync);

CUresult shim_cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
        return free_async(dptr, stream, FN_cuMemFreeAsync_ptsz, true);
}
SHIM_EXPORT(cuMemFreeAsync_ptsz);

void shim_pools_atfork_child(void) {
        pthread_mutex_init(&pool_lock, NULL);
        n_pools = 0;
}
