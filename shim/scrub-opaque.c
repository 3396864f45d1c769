/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * scrub-opaque.c — clearing the device memory that has no linear address of ours to memset:
 * physical allocations (cuMemCreate handles) and CUDA arrays, under the same policy as
 * linear memory (scrub.c): at release under on-free, at teardown / exit under both.
 *
 * Handles are cleared when the application releases them (cuMemRelease), through a mapping of
 * our own: reserve an address range, map the handle, grant this device read-write access,
 * memset, synchronize, unmap. Why at release and not at the last cuMemUnmap: the driver frees
 * the physical memory only once the handle is released *and* unmapped, in either order, and
 * until the release the application may map the handle again and expect its data; so the last
 * unmap is not the end of the data. Before the release the handle is still valid, so a
 * temporary mapping works whatever the application's own mappings are, and costs nothing on the
 * unmap path. What this cannot cover: writes through a mapping that outlives the release
 * (the memory is freed at that mapping's unmap), and handles exported to other processes.
 *
 * Arrays (cuArrayCreate, cuArray3DCreate, each level of a cuMipmappedArrayCreate) have an
 * opaque layout, so they are cleared with cuMemcpy3D from a zeroed host buffer, one depth slice
 * (or layer) at a time: the layout is the driver's, the element extent is all we need.
 */
#include <stdlib.h>

#include "shim.h"

void shim_scrub_handle(CUmemGenericAllocationHandle h, uint64_t bytes, CUdevice dev) {
        shim_pfn_cuMemAddressReserve reserve = REAL(cuMemAddressReserve);
        shim_pfn_cuMemAddressFree unreserve = REAL(cuMemAddressFree);
        shim_pfn_cuMemMap map = REAL(cuMemMap);
        shim_pfn_cuMemUnmap unmap = REAL(cuMemUnmap);
        shim_pfn_cuMemSetAccess access = REAL(cuMemSetAccess);
        shim_pfn_cuMemsetD8_v2 set = REAL(cuMemsetD8_v2);
        if (bytes == 0 || dev < 0)
                return;
        if (!reserve || !unreserve || !map || !unmap || !access || !set) {
                shim_log(SHIM_LOG_WARNING,
                         "cannot scrub a physical allocation: the driver lacks the VMM calls");
                return;
        }
        CUdeviceptr va = 0;
        CUresult r = reserve(&va, bytes, 0, 0, 0);
        if (r == CUDA_SUCCESS) {
                r = map(va, bytes, 0, h, 0);
                if (r == CUDA_SUCCESS) {
                        CUmemAccessDesc rw = { .location = { CU_MEM_LOCATION_TYPE_DEVICE, dev },
                                               .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE };
                        r = access(va, bytes, &rw, 1);
                        if (r == CUDA_SUCCESS)
                                r = set(va, 0, bytes);
                        /* The memset is asynchronous to the host: it must be done before the unmap. */
                        if (r == CUDA_SUCCESS)
                                r = REAL(cuCtxSynchronize)();
                        unmap(va, bytes);
                }
                unreserve(va, bytes);
        }
        if (r != CUDA_SUCCESS)
                shim_log(SHIM_LOG_WARNING, "cannot scrub a physical allocation of %llu bytes: CUDA error %d",
                         (unsigned long long) bytes, r);
}

void shim_scrub_array(CUarray a) {
        shim_pfn_cuArray3DGetDescriptor_v2 describe = REAL(cuArray3DGetDescriptor_v2);
        shim_pfn_cuMemcpy3D_v2 copy = REAL(cuMemcpy3D_v2);
        CUDA_ARRAY3D_DESCRIPTOR d = {};
        if (!a || !describe || !copy || describe(&d, a) != CUDA_SUCCESS) {
                shim_log(SHIM_LOG_WARNING, "cannot scrub an array: no descriptor");
                return;
        }
        size_t elem = shim_array_element_bytes(d.Format) * (d.NumChannels ? d.NumChannels : 1);
        size_t width = d.Width * elem, height = d.Height ? d.Height : 1, depth = d.Depth ? d.Depth : 1;
        if (elem == 0 || d.Width == 0 || width / elem != d.Width || height > SIZE_MAX / width) {
                shim_log(SHIM_LOG_WARNING, "cannot scrub an array of format 0x%x", (unsigned) d.Format);
                return;
        }
        /* One zeroed slice, copied to every depth index: calloc's pages are the kernel's zero
         * page until written, so even a large slice costs little host memory. */
        void *zero = calloc(height, width);
        if (!zero) {
                shim_log(SHIM_LOG_WARNING, "cannot scrub an array: out of host memory");
                return;
        }
        CUresult r = CUDA_SUCCESS;
        for (size_t z = 0; z < depth && r == CUDA_SUCCESS; z++) {
                CUDA_MEMCPY3D c = {
                        .srcMemoryType = CU_MEMORYTYPE_HOST,
                        .srcHost = zero,
                        .srcPitch = width,
                        .srcHeight = height,
                        .dstMemoryType = CU_MEMORYTYPE_ARRAY,
                        .dstArray = a,
                        .dstZ = z,
                        .WidthInBytes = width,
                        .Height = height,
                        .Depth = 1,
                };
                r = copy(&c);
        }
        free(zero);
        if (r != CUDA_SUCCESS)
                shim_log(SHIM_LOG_WARNING, "cannot scrub an array: CUDA error %d", r);
}

void shim_scrub_mipmap(CUmipmappedArray m, unsigned levels) {
        shim_pfn_cuMipmappedArrayGetLevel level = REAL(cuMipmappedArrayGetLevel);
        for (unsigned k = 0; level && k < levels; k++) {
                CUarray a;
                if (level(&a, m, k) == CUDA_SUCCESS)
                        shim_scrub_array(a);
        }
}

void shim_scrub_alloc(const struct shim_alloc *a) {
        switch (a->kind) {
        case ALLOC_LINEAR:
        case ALLOC_MANAGED:
        case ALLOC_ASYNC:
                shim_scrub(a->key, a->bytes, false, NULL);
                break;
        case ALLOC_HANDLE:
                shim_scrub_handle(a->key, a->bytes, a->dev);
                break;
        case ALLOC_ARRAY:
                shim_scrub_array((CUarray) (uintptr_t) a->key);
                break;
        case ALLOC_MIPMAP:
                shim_scrub_mipmap((CUmipmappedArray) (uintptr_t) a->key, (unsigned) a->bytes);
                break;
        }
}
