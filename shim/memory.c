/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memory.c — device memory against the slice's quota: reserve first (lib/slice: one
 * compare-exchange on the slice's counter), then ask the driver, then keep the reservation or
 * give it back. Over the quota the caller gets exactly CUDA_ERROR_OUT_OF_MEMORY, the error the
 * driver itself returns, so frameworks take their usual out-of-memory path (free caches, retry).
 *
 * Covered here: cuMemAlloc_v2, cuMemAllocPitch_v2, cuMemAllocManaged, cuMemFree_v2,
 * cuMemCreate / cuMemRelease (physical handles on a device; reservations and mappings are not
 * memory) and CUDA arrays and mipmapped arrays (charged by their memory requirements where the
 * driver reports them). Allocations on a GPU that is not the slice's are refused (device.c).
 * Pools are in pool.c, reporting (cuMemGetInfo, NVML) in meminfo.c, scrubbing in scrub.c.
 */
#include "shim.h"

CUresult shim_charge_dev(CUdevice dev, uint64_t bytes, uint64_t *ret_charged) {
        if (shim.mode == SHIM_OFF) {
                *ret_charged = 0;
                return CUDA_SUCCESS;
        }
        struct slice_proc *p = shim_proc();
        if (!p || shim_device_check(dev) != CUDA_SUCCESS)
                return CUDA_ERROR_OUT_OF_MEMORY;
        uint64_t n = slice_round(shim.slice, bytes);
        int r = slice_charge(shim.slice, p, n);
        /* Dead processes' charges are only returned when someone needs them, and memory
         * cached in our pools before anything is refused. */
        if (r == -EDQUOT && slice_reclaim_dead(shim.slice) > 0)
                r = slice_charge(shim.slice, p, n);
        if (r == -EDQUOT) {
                shim_pools_trim();
                shim_graphs_trim();
                r = slice_charge(shim.slice, p, n);
        }
        if (r < 0) {
                atomic_fetch_add(&shim.slice->oom_count, 1);
                shim_log(SHIM_LOG_INFO, "slice %s: %llu bytes refused (%llu of %llu in use)",
                         shim.slice->name, (unsigned long long) n,
                         (unsigned long long) atomic_load(&shim.slice->used),
                         (unsigned long long) shim.slice->quota);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        *ret_charged = n;
        return CUDA_SUCCESS;
}

void shim_uncharge(uint64_t charged) {
        struct slice_proc *p = shim.mode == SHIM_ON && charged ? shim_proc() : NULL;
        if (p)
                slice_uncharge(shim.slice, p, charged);
}

/* Move a reservation to the real size: charge more (may fail) or give back the difference. */
static CUresult settle(uint64_t *charged, uint64_t actual) {
        uint64_t want = shim.mode == SHIM_OFF ? 0 : slice_round(shim.slice, actual);
        if (want > *charged) {
                uint64_t extra;
                CUresult r = shim_charge(want - *charged, &extra);
                if (r != CUDA_SUCCESS)
                        return r;
                *charged += extra;
        } else if (want < *charged) {
                shim_uncharge(*charged - want);
                *charged = want;
        }
        return CUDA_SUCCESS;
}

static CUcontext current_ctx(void) {
        CUcontext ctx = NULL;
        shim_pfn_cuCtxGetCurrent get = REAL(cuCtxGetCurrent);
        if (get)
                get(&ctx);
        return ctx;
}

/* Remember an allocation; if we cannot, undo it rather than leave a charge we cannot return. */
static CUresult track_on(enum shim_space space, uint64_t key, enum shim_alloc_kind kind, uint64_t charged,
                         uint64_t bytes, CUdevice dev) {
        if (shim.mode == SHIM_OFF)
                return CUDA_SUCCESS;
        shim_register_exit();
        struct shim_alloc a = {
                .space = space,
                .key = key,
                .kind = kind,
                .charged = charged,
                .bytes = bytes,
                .ctx = current_ctx(),
                .dev = dev,
        };
        return shim_track_add(&a) < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

/* Give the driver back what it made for key in space (the caller returns the charge). */
static void destroy(enum shim_space space, uint64_t key) {
        switch (space) {
        case SPACE_PTR:
                REAL(cuMemFree_v2)((CUdeviceptr) key);
                break;
        case SPACE_HANDLE:
                REAL(cuMemRelease)((CUmemGenericAllocationHandle) key);
                break;
        case SPACE_ARRAY:
                REAL(cuArrayDestroy)((CUarray) (uintptr_t) key);
                break;
        case SPACE_MIPMAP:
                REAL(cuMipmappedArrayDestroy)((CUmipmappedArray) (uintptr_t) key);
                break;
        }
}

/* The last step of every allocation the driver made for us: settled is CUDA_SUCCESS, or why the
 * slice cannot keep it (settled to its real size, it is over the quota). Tracked, or else given
 * back to the driver and its charge to the slice. */
static CUresult keep(CUresult settled, enum shim_space space, uint64_t key, enum shim_alloc_kind kind,
                     uint64_t charged, uint64_t bytes, CUdevice dev) {
        CUresult r = settled == CUDA_SUCCESS ? track_on(space, key, kind, charged, bytes, dev) : settled;
        if (r != CUDA_SUCCESS) {
                destroy(space, key);
                shim_uncharge(charged);
        }
        return r;
}

/* After the driver's free of the tracked allocation a: its charge comes back or, where the driver
 * refused, a is tracked again (and its charge returned where it cannot be). */
static inline void freed(CUresult r, const struct shim_alloc *a) {
        if (r == CUDA_SUCCESS || shim_track_add(a) < 0)
                shim_uncharge(a->charged);
}

static CUresult alloc_linear(CUdeviceptr *dptr, size_t bytesize, enum shim_alloc_kind kind, bool charge,
                             CUresult (*call)(CUdeviceptr *, size_t, unsigned), unsigned flags) {
        uint64_t charged = 0;
        CUresult r = charge ? shim_charge(bytesize, &charged) : CUDA_SUCCESS;
        if (r != CUDA_SUCCESS)
                return r;
        r = call(dptr, bytesize, flags);
        if (r != CUDA_SUCCESS) {
                shim_uncharge(charged);
                return r;
        }
        return keep(CUDA_SUCCESS, SPACE_PTR, *dptr, kind, charged, bytesize, -1);
}

static CUresult call_alloc(CUdeviceptr *dptr, size_t n, unsigned flags) {
        (void) flags;
        shim_pfn_cuMemAlloc_v2 real = REAL(cuMemAlloc_v2);
        return real ? real(dptr, n) : CUDA_ERROR_NOT_INITIALIZED;
}

static CUresult call_alloc_managed(CUdeviceptr *dptr, size_t n, unsigned flags) {
        shim_pfn_cuMemAllocManaged real = REAL(cuMemAllocManaged);
        return real ? real(dptr, n, flags) : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult shim_cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
        if (!dptr)
                return call_alloc(dptr, bytesize, 0); /* the driver's own error */
        return alloc_linear(dptr, bytesize, ALLOC_LINEAR, true, call_alloc, 0);
}
SHIM_EXPORT(cuMemAlloc_v2);

CUresult shim_cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
        if (!dptr)
                return call_alloc_managed(dptr, bytesize, flags);
        bool charge = !(shim.slice && (shim.slice->flags & SLICE_F_MANAGED_UNCHARGED));
        return alloc_linear(dptr, bytesize, ALLOC_MANAGED, charge, call_alloc_managed, flags);
}
SHIM_EXPORT(cuMemAllocManaged);

CUresult shim_cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                 unsigned int elem) {
        shim_pfn_cuMemAllocPitch_v2 real = REAL(cuMemAllocPitch_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!dptr || !pitch || height == 0 || width > SIZE_MAX / height)
                return real(dptr, pitch, width, height, elem);
        /* The driver picks the pitch; reserve with the usual 512-byte alignment, settle after. */
        uint64_t estimate = (width + 511) / 512 * 512 * height, charged = 0;
        CUresult r = shim_charge(estimate, &charged);
        if (r != CUDA_SUCCESS)
                return r;
        r = real(dptr, pitch, width, height, elem);
        if (r != CUDA_SUCCESS) {
                shim_uncharge(charged);
                return r;
        }
        uint64_t actual = (uint64_t) *pitch * height;
        r = settle(&charged, actual);
        return keep(r, SPACE_PTR, *dptr, ALLOC_LINEAR, charged, actual, -1);
}
SHIM_EXPORT(cuMemAllocPitch_v2);

CUresult shim_cuMemFree_v2(CUdeviceptr dptr) {
        shim_pfn_cuMemFree_v2 real = REAL(cuMemFree_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        struct shim_alloc a;
        if (dptr == 0 || shim.mode == SHIM_OFF || !shim_track_take(SPACE_PTR, dptr, &a))
                return real(dptr);
        if (shim.scrub == SLICE_SCRUB_ON_FREE)
                shim_scrub(dptr, a.bytes, false, NULL);
        CUresult r = real(dptr);
        freed(r, &a);
        return r;
}
SHIM_EXPORT(cuMemFree_v2);

CUresult shim_cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                          unsigned long long flags) {
        shim_pfn_cuMemCreate real = REAL(cuMemCreate);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        /* Only device memory counts; host (and host NUMA) locations are the host's. */
        if (!handle || !prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
                return real(handle, size, prop, flags);
        /* Charged to the device it is created on, which need not be the current context's. */
        uint64_t charged = 0;
        CUresult r = shim_charge_dev(prop->location.id, size, &charged);
        if (r != CUDA_SUCCESS)
                return r;
        r = real(handle, size, prop, flags);
        if (r != CUDA_SUCCESS) {
                shim_uncharge(charged);
                return r;
        }
        /* Scrubbed through a mapping of our own when released (scrub-opaque.c). */
        return keep(CUDA_SUCCESS, SPACE_HANDLE, *handle, ALLOC_HANDLE, charged, size, prop->location.id);
}
SHIM_EXPORT(cuMemCreate);

CUresult shim_cuMemRelease(CUmemGenericAllocationHandle handle) {
        shim_pfn_cuMemRelease real = REAL(cuMemRelease);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        struct shim_alloc a;
        if (shim.mode == SHIM_OFF || !shim_track_take(SPACE_HANDLE, handle, &a))
                return real(handle);
        if (shim.scrub == SLICE_SCRUB_ON_FREE)
                shim_scrub_handle(handle, a.bytes, a.dev);
        CUresult r = real(handle);
        freed(r, &a);
        return r;
}
SHIM_EXPORT(cuMemRelease);

/* Bytes per element of an array format; 0 for a format we do not know (newer CUDA): charging
 * estimates those high (16), scrubbing leaves them alone rather than guess an extent. */
size_t shim_array_element_bytes(int format) {
        switch (format) {
        case CU_AD_FORMAT_UNSIGNED_INT8:
        case CU_AD_FORMAT_SIGNED_INT8:
                return 1;
        case CU_AD_FORMAT_UNSIGNED_INT16:
        case CU_AD_FORMAT_SIGNED_INT16:
        case CU_AD_FORMAT_HALF:
                return 2;
        case CU_AD_FORMAT_UNSIGNED_INT32:
        case CU_AD_FORMAT_SIGNED_INT32:
        case CU_AD_FORMAT_FLOAT:
                return 4;
        default:
                return 0;
        }
}

static uint64_t array_estimate(size_t w, size_t h, size_t d, int format, unsigned channels) {
        uint64_t n = (uint64_t) (w ? w : 1) * (h ? h : 1);
        if (d > 1)
                n *= d;
        size_t elem = shim_array_element_bytes(format);
        return n * (elem ? elem : 16) * (channels ? channels : 1);
}

/* After creation: charge what the driver says the array occupies, where it can tell. */
static CUresult array_settle(CUarray array, uint64_t *charged) {
        shim_pfn_cuArrayGetMemoryRequirements req = REAL(cuArrayGetMemoryRequirements);
        shim_pfn_cuCtxGetDevice get_dev = REAL(cuCtxGetDevice);
        CUdevice dev;
        CUDA_ARRAY_MEMORY_REQUIREMENTS mr = {};
        if (req && get_dev && get_dev(&dev) == CUDA_SUCCESS && req(&mr, array, dev) == CUDA_SUCCESS &&
            mr.size)
                return settle(charged, mr.size);
        return CUDA_SUCCESS;
}

/* The driver's answer r for an array reserved with `charged`: settle, track, or undo. Arrays
 * are scrubbed by copying zeros into them (scrub-opaque.c). */
static CUresult array_finish(CUresult r, CUarray *array, uint64_t charged) {
        if (r != CUDA_SUCCESS) {
                shim_uncharge(charged);
                return r;
        }
        r = array_settle(*array, &charged);
        return keep(r, SPACE_ARRAY, (uint64_t) (uintptr_t) *array, ALLOC_ARRAY, charged, 0, -1);
}

CUresult shim_cuArrayCreate_v2(CUarray *array, const CUDA_ARRAY_DESCRIPTOR *d) {
        shim_pfn_cuArrayCreate_v2 real = REAL(cuArrayCreate_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!array || !d)
                return real(array, d);
        uint64_t charged = 0;
        CUresult r = shim_charge(array_estimate(d->Width, d->Height, 0, d->Format, d->NumChannels), &charged);
        if (r != CUDA_SUCCESS)
                return r;
        return array_finish(real(array, d), array, charged);
}
SHIM_EXPORT(cuArrayCreate_v2);

CUresult shim_cuArray3DCreate_v2(CUarray *array, const CUDA_ARRAY3D_DESCRIPTOR *d) {
        shim_pfn_cuArray3DCreate_v2 real = REAL(cuArray3DCreate_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!array || !d)
                return real(array, d);
        uint64_t charged = 0;
        CUresult r = shim_charge(array_estimate(d->Width, d->Height, d->Depth, d->Format, d->NumChannels),
                                 &charged);
        if (r != CUDA_SUCCESS)
                return r;
        return array_finish(real(array, d), array, charged);
}
SHIM_EXPORT(cuArray3DCreate_v2);

CUresult shim_cuArrayDestroy(CUarray array) {
        shim_pfn_cuArrayDestroy real = REAL(cuArrayDestroy);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        struct shim_alloc a;
        if (shim.mode == SHIM_OFF || !shim_track_take(SPACE_ARRAY, (uint64_t) (uintptr_t) array, &a))
                return real(array);
        if (shim.scrub == SLICE_SCRUB_ON_FREE)
                shim_scrub_array(array);
        CUresult r = real(array);
        freed(r, &a);
        return r;
}
SHIM_EXPORT(cuArrayDestroy);

/* Mipmapped arrays: every level is an array, level k a 2^k-th of level 0 in each dimension (at
 * least 1); reserved by that estimate, settled to the driver's requirement. */
CUresult shim_cuMipmappedArrayCreate(CUmipmappedArray *m, const CUDA_ARRAY3D_DESCRIPTOR *d,
                                     unsigned int levels) {
        shim_pfn_cuMipmappedArrayCreate real = REAL(cuMipmappedArrayCreate);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!m || !d || levels == 0 || levels > 32)
                return real(m, d, levels);
        uint64_t estimate = 0, charged = 0;
        for (unsigned k = 0; k < levels; k++)
                estimate +=
                        array_estimate(d->Width >> k ? d->Width >> k : 1, d->Height >> k ? d->Height >> k : 1,
                                       d->Depth > 1 ? (d->Depth >> k ? d->Depth >> k : 1) : d->Depth,
                                       d->Format, d->NumChannels);
        CUresult r = shim_charge(estimate, &charged);
        if (r != CUDA_SUCCESS)
                return r;
        r = real(m, d, levels);
        if (r != CUDA_SUCCESS) {
                shim_uncharge(charged);
                return r;
        }
        shim_pfn_cuMipmappedArrayGetMemoryRequirements req = REAL(cuMipmappedArrayGetMemoryRequirements);
        CUdevice dev = shim_current_device();
        CUDA_ARRAY_MEMORY_REQUIREMENTS mr = {};
        if (req && dev >= 0 && req(&mr, *m, dev) == CUDA_SUCCESS && mr.size)
                r = settle(&charged, mr.size);
        return keep(r, SPACE_MIPMAP, (uint64_t) (uintptr_t) *m, ALLOC_MIPMAP, charged, levels, -1);
}
SHIM_EXPORT(cuMipmappedArrayCreate);

CUresult shim_cuMipmappedArrayDestroy(CUmipmappedArray m) {
        shim_pfn_cuMipmappedArrayDestroy real = REAL(cuMipmappedArrayDestroy);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        struct shim_alloc a;
        if (shim.mode == SHIM_OFF || !shim_track_take(SPACE_MIPMAP, (uint64_t) (uintptr_t) m, &a))
                return real(m);
        if (shim.scrub == SLICE_SCRUB_ON_FREE)
                shim_scrub_mipmap(m, (unsigned) a.bytes);
        CUresult r = real(m);
        freed(r, &a);
        return r;
}
SHIM_EXPORT(cuMipmappedArrayDestroy);
