/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tenant-scrub.c — the writers of the scrub tests for memory without a linear address of the
 * application's own: fill BYTES of a cuMemCreate handle (through a mapping), of a 2D array or
 * of level 0 of a two-level mipmapped array with BYTE, then release it or just exit. The reader
 * (tenant.c "read") then allocates plain memory and counts what is left.
 */
#include <stdlib.h>
#include <string.h>

#include "tenant.h"

static void *get(const char *name) {
        void *p = NULL;
        cu.gpa(name, &p, 12040, 0, NULL);
        return p;
}

static int write_handle(uint64_t bytes, int byte, bool free_it) {
        PFN_cuMemCreate_v10020 create = get("cuMemCreate");
        PFN_cuMemRelease_v10020 release = get("cuMemRelease");
        PFN_cuMemAddressReserve_v10020 reserve = get("cuMemAddressReserve");
        PFN_cuMemMap_v10020 map = get("cuMemMap");
        PFN_cuMemSetAccess_v10020 access = get("cuMemSetAccess");
        PFN_cuMemUnmap_v10020 unmap = get("cuMemUnmap");
        CUmemAllocationProp prop = { .type = 1, .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 } };
        CUmemAccessDesc rw = { .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 },
                               .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE };
        CUmemGenericAllocationHandle h;
        CUdeviceptr va;
        CUresult r = create(&h, bytes, &prop, 0);
        if (r == CUDA_SUCCESS)
                r = reserve(&va, bytes, 0, 0, 0);
        if (r == CUDA_SUCCESS)
                r = map(va, bytes, 0, h, 0);
        if (r == CUDA_SUCCESS)
                r = access(va, bytes, &rw, 1);
        char *buf = malloc(bytes);
        memset(buf, byte, bytes);
        if (r == CUDA_SUCCESS)
                r = cu.htod(va, buf, bytes);
        free(buf);
        if (r == CUDA_SUCCESS && free_it) {
                r = unmap(va, bytes);
                if (r == CUDA_SUCCESS)
                        r = release(h);
        }
        printf("rc=%d ptr=0x%llx\n", r, (unsigned long long) h); /* the fake's handle is its address */
        return r == CUDA_SUCCESS ? 0 : 1;
}

/* BYTES as a square-ish 2D array of 4-byte elements (UINT8 x 4), rows of 4 KiB. */
static int write_array(uint64_t bytes, int byte, bool free_it, bool mipmap) {
        PFN_cuArray3DCreate_v3020 create = get("cuArray3DCreate");
        PFN_cuArrayDestroy_v2000 destroy = get("cuArrayDestroy");
        PFN_cuMipmappedArrayCreate_v5000 mm_create = get("cuMipmappedArrayCreate");
        PFN_cuMipmappedArrayDestroy_v5000 mm_destroy = get("cuMipmappedArrayDestroy");
        PFN_cuMipmappedArrayGetLevel_v5000 mm_level = get("cuMipmappedArrayGetLevel");
        PFN_cuMemcpy3D_v3020 copy = get("cuMemcpy3D");
        CUDA_ARRAY3D_DESCRIPTOR d = {
                .Width = 1024, .Height = bytes / 4096, .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4
        };
        CUarray a = NULL;
        CUmipmappedArray m = NULL;
        CUresult r = mipmap ? mm_create(&m, &d, 2) : create(&a, &d);
        if (r == CUDA_SUCCESS && mipmap)
                r = mm_level(&a, m, 0);
        char *buf = malloc(bytes);
        memset(buf, byte, bytes);
        CUDA_MEMCPY3D c = { .srcMemoryType = CU_MEMORYTYPE_HOST,
                            .srcHost = buf,
                            .srcPitch = 4096,
                            .srcHeight = d.Height,
                            .dstMemoryType = CU_MEMORYTYPE_ARRAY,
                            .dstArray = a,
                            .WidthInBytes = 4096,
                            .Height = d.Height,
                            .Depth = 1 };
        if (r == CUDA_SUCCESS)
                r = copy(&c);
        free(buf);
        CUdeviceptr where = r == CUDA_SUCCESS ? cu.array_ptr(a) : 0;
        if (r == CUDA_SUCCESS && free_it)
                r = mipmap ? mm_destroy(m) : destroy(a);
        printf("rc=%d ptr=0x%llx\n", r, (unsigned long long) where);
        return r == CUDA_SUCCESS ? 0 : 1;
}

int tenant_write_opaque(const char *kind, uint64_t bytes, int byte, bool free_it) {
        if (streq(kind, "handle"))
                return write_handle(bytes, byte, free_it);
        if (streq(kind, "array") || streq(kind, "mipmap"))
                return write_array(bytes, byte, free_it, streq(kind, "mipmap"));
        fprintf(stderr, "tenant: unknown kind %s\n", kind);
        return 1;
}
