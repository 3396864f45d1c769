/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * meminfo.c — what the application is told about device memory, consistent with its quota:
 *   cuMemGetInfo_v2          total = quota, free = min(quota - used by the slice, real free)
 *   cuDeviceTotalMem_v2      quota (the physical size when unlimited or larger)
 *   nvmlDeviceGetMemoryInfo  (and _v2) the same numbers, used = the slice's usage
 * Frameworks size their caches from these (PyTorch's allocator, cuDNN workspaces), so they must
 * agree with what an allocation will actually get, and never wrap below zero.
 */
#include "shim.h"

static bool limited(void) {
        return shim.mode == SHIM_ON && shim.slice->quota > 0;
}

/* The slice's usage now, dead processes' charges and stale pool charges returned first. */
static uint64_t slice_used(void) {
        slice_reclaim_dead(shim.slice);
        shim_pools_sync();
        shim_graphs_sync();
        return atomic_load(&shim.slice->used);
}

static uint64_t min_u64(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

CUresult shim_cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
        shim_pfn_cuMemGetInfo_v2 real = REAL(cuMemGetInfo_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        size_t f = 0, t = 0;
        CUresult r = real(&f, &t);
        if (r != CUDA_SUCCESS || !limited()) {
                if (r == CUDA_SUCCESS) {
                        if (free_bytes)
                                *free_bytes = f;
                        if (total_bytes)
                                *total_bytes = t;
                }
                return r;
        }
        uint64_t quota = min_u64(shim.slice->quota, t), used = slice_used();
        if (free_bytes)
                *free_bytes = min_u64(used >= quota ? 0 : quota - used, f);
        if (total_bytes)
                *total_bytes = quota;
        return CUDA_SUCCESS;
}
SHIM_EXPORT(cuMemGetInfo_v2);

CUresult shim_cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
        shim_pfn_cuDeviceTotalMem_v2 real = REAL(cuDeviceTotalMem_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        CUresult r = real(bytes, dev);
        if (r == CUDA_SUCCESS && bytes && limited())
                *bytes = min_u64(shim.slice->quota, *bytes);
        return r;
}
SHIM_EXPORT(cuDeviceTotalMem_v2);

/* total, used and free for NVML from the real total and free. */
static void nvml_numbers(unsigned long long real_total, unsigned long long real_free,
                         unsigned long long *total, unsigned long long *used,
                         unsigned long long *free_bytes) {
        uint64_t quota = min_u64(shim.slice->quota, real_total), u = min_u64(slice_used(), quota);
        *total = quota;
        *used = u;
        *free_bytes = min_u64(quota - u, real_free);
}

nvmlReturn_t shim_nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *mem) {
        shim_pfn_nvmlDeviceGetMemoryInfo real = REAL(nvmlDeviceGetMemoryInfo);
        if (!real)
                return 3; /* NVML_ERROR_NOT_SUPPORTED */
        nvmlReturn_t r = real(dev, mem);
        if (r == 0 && mem && limited())
                nvml_numbers(mem->total, mem->free, &mem->total, &mem->used, &mem->free);
        return r;
}
SHIM_EXPORT(nvmlDeviceGetMemoryInfo);

nvmlReturn_t shim_nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *mem) {
        shim_pfn_nvmlDeviceGetMemoryInfo_v2 real = REAL(nvmlDeviceGetMemoryInfo_v2);
        if (!real)
                return 3;
        nvmlReturn_t r = real(dev, mem);
        if (r == 0 && mem && limited()) {
                nvml_numbers(mem->total, mem->free, &mem->total, &mem->used, &mem->free);
                mem->reserved = 0; /* the driver's reservation is outside the slice's view */
        }
        return r;
}
SHIM_EXPORT(nvmlDeviceGetMemoryInfo_v2);
