/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tenant-memory.c — quota and reporting checks in one process under the shim, with exact
 * numbers: every allocation kind is charged what it occupies (pitch, arrays by their memory
 * requirements, pools by their reserved size), refusals are exactly CUDA_ERROR_OUT_OF_MEMORY and
 * change nothing, cached pool memory is trimmed before anything is refused, and cuMemGetInfo /
 * cuDeviceTotalMem report the quota. With an unlimited slice the driver's numbers pass through.
 */
#include <stdlib.h>

#include "tenant.h"

#define MiB (UINT64_C(1) << 20)

static int failures;

static void *get(const char *name, int version) {
        void *p = NULL;
        cu.gpa(name, &p, version, 0, NULL);
        return p;
}

#define EXPECT_USED(n)                                                          \
        CHECK(failures, tenant_slice_used() == (n), "used %llu, expected %llu", \
              (unsigned long long) tenant_slice_used(), (unsigned long long) (n))

static void check_info(uint64_t expect_free, uint64_t expect_total) {
        size_t f = 0, t = 0, total = 0;
        CHECK(failures, cu.mem_info(&f, &t) == CUDA_SUCCESS, "cuMemGetInfo failed");
        CHECK(failures, f == expect_free && t == expect_total,
              "cuMemGetInfo free %zu total %zu, expected %llu %llu", f, t, (unsigned long long) expect_free,
              (unsigned long long) expect_total);
        CHECK(failures, cu.total_mem(&total, 0) == CUDA_SUCCESS && total == expect_total,
              "cuDeviceTotalMem %zu, expected %llu", total, (unsigned long long) expect_total);
}

static void check_linear(uint64_t q) {
        CUdeviceptr a, b, c;
        check_info(q, q);
        CHECK(failures, cu.mem_alloc(&a, 40 * MiB) == CUDA_SUCCESS, "40 MiB of %llu", (unsigned long long) q);
        check_info(q - 40 * MiB, q);
        CUresult r = cu.mem_alloc(&b, q - 40 * MiB + 1);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "over the quota by one byte: rc %d", r);
        EXPECT_USED(40 * MiB);
        CHECK(failures, cu.mem_alloc(&b, q - 40 * MiB) == CUDA_SUCCESS, "exactly the rest");
        check_info(0, q);
        r = cu.mem_alloc(&c, 1);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "one byte over a full quota: rc %d", r);
        cu.mem_free(a);
        cu.mem_free(b);
        EXPECT_USED(0);
}

static void check_kinds(void) {
        CUdeviceptr d;
        size_t pitch = 0;
        PFN_cuMemAllocPitch_v3020 alloc_pitch = get("cuMemAllocPitch", 12040);
        CHECK(failures, alloc_pitch(&d, &pitch, 1000, 100, 4) == CUDA_SUCCESS && pitch == 1024, "pitch %zu",
              pitch);
        EXPECT_USED(1024 * 100);
        cu.mem_free(d);

        PFN_cuMemAllocManaged_v6000 managed = get("cuMemAllocManaged", 12040);
        CHECK(failures, managed(&d, MiB, 1) == CUDA_SUCCESS, "managed");
        EXPECT_USED(MiB);
        cu.mem_free(d);

        PFN_cuMemCreate_v10020 create = get("cuMemCreate", 12040);
        PFN_cuMemRelease_v10020 release = get("cuMemRelease", 12040);
        CUmemAllocationProp prop = { .type = 1, .location = { CU_MEM_LOCATION_TYPE_DEVICE, 0 } };
        CUmemGenericAllocationHandle h, hh;
        CHECK(failures, create(&h, 2 * MiB, &prop, 0) == CUDA_SUCCESS, "cuMemCreate");
        EXPECT_USED(2 * MiB);
        prop.location.type = CU_MEM_LOCATION_TYPE_HOST;
        CHECK(failures, create(&hh, 2 * MiB, &prop, 0) == CUDA_SUCCESS, "cuMemCreate on the host");
        EXPECT_USED(2 * MiB); /* host memory is not the slice's */
        release(hh);
        release(h);
        EXPECT_USED(0);

        /* Arrays are charged what the driver says they take, more than width x height here. */
        PFN_cuArrayCreate_v3020 array = get("cuArrayCreate", 12040);
        PFN_cuArray3DCreate_v3020 array3d = get("cuArray3DCreate", 12040);
        PFN_cuArrayDestroy_v2000 destroy = get("cuArrayDestroy", 12040);
        CUarray arr, arr3;
        CUDA_ARRAY_DESCRIPTOR d2 = {
                .Width = 100, .Height = 100, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1
        };
        CHECK(failures, array(&arr, &d2) == CUDA_SUCCESS, "cuArrayCreate");
        EXPECT_USED(65536);
        CUDA_ARRAY3D_DESCRIPTOR d3 = {
                .Width = 64, .Height = 64, .Depth = 64, .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4
        };
        CHECK(failures, array3d(&arr3, &d3) == CUDA_SUCCESS, "cuArray3DCreate");
        EXPECT_USED(65536 + MiB);
        destroy(arr);
        destroy(arr3);
        EXPECT_USED(0);
}

/* An array whose estimate fits what is left of the quota but whose measured size does not: the
 * caller gets CUDA_ERROR_OUT_OF_MEMORY, the driver its array back and the slice its reservation. */
static void check_measured_over(uint64_t q) {
        PFN_cuArrayCreate_v3020 array = get("cuArrayCreate", 12040);
        CUDA_ARRAY_DESCRIPTOR d2 = { /* 40000 bytes estimated, 65536 measured */
                                     .Width = 100,
                                     .Height = 100,
                                     .Format = CU_AD_FORMAT_FLOAT,
                                     .NumChannels = 1
        };
        CUdeviceptr a, b;
        CUarray arr;
        /* All but 48 KiB of the quota, in the blocks check_linear freed: the fake GPU, shared with
         * the unlimited tenant, does not merge free blocks, and new sizes would use up its arena. */
        CHECK(failures, cu.mem_alloc(&a, 40 * MiB) == CUDA_SUCCESS, "40 MiB");
        CHECK(failures, cu.mem_alloc(&b, q - 40 * MiB - 48 * 1024) == CUDA_SUCCESS, "all but 48 KiB");
        uint64_t device = cu.device_used();
        CUresult r = array(&arr, &d2);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "an array measured over the quota: rc %d", r);
        EXPECT_USED(q - 48 * 1024);
        CHECK(failures, cu.device_used() == device, "the driver's memory %llu after the refusal, %llu before",
              (unsigned long long) cu.device_used(), (unsigned long long) device);
        cu.mem_free(a);
        cu.mem_free(b);
        EXPECT_USED(0);
}

/* Pools: charged their reserved size (2 MiB grains in the fake), trimmed before a refusal. */
static void check_pools(uint64_t q) {
        PFN_cuMemAllocAsync_v11020 alloc_async = get("cuMemAllocAsync", 12040);
        PFN_cuMemFreeAsync_v11020 free_async = get("cuMemFreeAsync", 12040);
        CUdeviceptr a, b, big, c;
        CHECK(failures, alloc_async(&a, MiB, NULL) == CUDA_SUCCESS, "async 1");
        EXPECT_USED(2 * MiB);
        CHECK(failures, alloc_async(&b, MiB, NULL) == CUDA_SUCCESS, "async 2");
        EXPECT_USED(4 * MiB);
        free_async(a, NULL);
        free_async(b, NULL);
        cu.sync();
        check_info(q - 4 * MiB, q); /* cached in the pool: still unavailable to others */
        /* Needs 62 MiB of pool: only fits once the cached 4 MiB are trimmed. */
        CHECK(failures, alloc_async(&big, q - 3 * MiB, NULL) == CUDA_SUCCESS, "async after trim");
        EXPECT_USED(q - 2 * MiB);
        CUresult r = cu.mem_alloc(&c, 3 * MiB);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "over the quota with a busy pool: rc %d", r);
        free_async(big, NULL);
        cu.sync();
        /* The pool still holds 62 MiB; a plain allocation trims it rather than fail. */
        CHECK(failures, cu.mem_alloc(&c, 3 * MiB) == CUDA_SUCCESS, "cuMemAlloc after the pool was trimmed");
        EXPECT_USED(3 * MiB);
        cu.mem_free(c);
        EXPECT_USED(0);
}

static void check_unlimited(void) {
        size_t f, t, dev_total;
        cu.mem_info(&f, &t);
        cu.total_mem(&dev_total, 0);
        uint64_t used = cu.device_used();
        CHECK(failures, t == dev_total && t >= 256 * MiB && f == t - used, "unlimited: free %zu total %zu", f,
              t);
        CUdeviceptr d;
        CHECK(failures, cu.mem_alloc(&d, 100 * MiB) == CUDA_SUCCESS, "unlimited alloc");
        EXPECT_USED(100 * MiB); /* still counted, for vgpuctl's usage */
        cu.mem_free(d);
        EXPECT_USED(0);
}

int tenant_memory(void) {
        struct slice *s = tenant_slice();
        if (!s) {
                fprintf(stderr, "tenant: no slice\n");
                return 1;
        }
        if (s->quota == 0)
                check_unlimited();
        else {
                check_linear(s->quota);
                check_kinds();
                check_measured_over(s->quota);
                check_pools(s->quota);
        }
        printf("memory: %d failure(s)\n", failures);
        return failures ? 1 : 0;
}
