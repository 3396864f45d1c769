/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tenant-graph.c — one process under the shim with exact numbers:
 *   graph   CUDA graph memory: allocation nodes (built, and captured from cuMemAllocAsync) cost
 *           nothing until launch, are charged by the graph pool's reserved size once launched or
 *           uploaded, relaunches charge nothing more, cached graph memory is trimmed before a
 *           launch or an allocation is refused, and a launch over the quota is refused with
 *           exactly CUDA_ERROR_OUT_OF_MEMORY without any memory being taken.
 *   twogpu  two devices: allocations on the slice's GPU are charged, those on the other GPU are
 *           refused with CUDA_ERROR_OUT_OF_MEMORY and charge nothing (slice of 64 MiB or more).
 */
#include <stdlib.h>

#include "tenant.h"

#define MiB (UINT64_C(1) << 20)

static int failures;

static void *get(const char *name, int version, cuuint64_t flags) {
        void *p = NULL;
        cu.gpa(name, &p, version, flags, NULL);
        return p;
}

#define EXPECT_USED(n)                                                                  \
        CHECK(failures, tenant_slice_used() == (n), "used %llu MiB, expected %llu MiB", \
              (unsigned long long) (tenant_slice_used() / MiB), (unsigned long long) ((n) / MiB))

static struct {
        CUresult (*create)(CUgraph *, unsigned);
        CUresult (*add_alloc)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t,
                              CUDA_MEM_ALLOC_NODE_PARAMS *);
        CUresult (*add_free)(CUgraphNode *, CUgraph, const CUgraphNode *, size_t, CUdeviceptr);
        PFN_cuGraphInstantiateWithFlags_v11040 instantiate; /* "cuGraphInstantiate" at 12.0 */
        PFN_cuGraphInstantiateWithParams_v12000 instantiate_params;
        PFN_cuGraphUpload_v11010 upload;
        PFN_cuGraphExecDestroy_v10000 exec_destroy;
        CUresult (*destroy)(CUgraph);
        PFN_cuDeviceGetGraphMemAttribute_v11040 attr;
        PFN_cuDeviceGraphMemTrim_v11040 trim;
        CUresult (*stream_create)(CUstream *, unsigned);
        CUresult (*begin)(CUstream, int);
        CUresult (*end)(CUstream, CUgraph *);
        PFN_cuMemAllocAsync_v11020 alloc_async;
        PFN_cuMemFreeAsync_v11020 free_async;
} g;

static uint64_t graph_reserved(void) {
        cuuint64_t v = UINT64_MAX;
        g.attr(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &v);
        return v;
}

/* A graph allocating and freeing n bytes, built node by node. */
static CUgraph built_graph(uint64_t n) {
        CUgraph graph;
        CUgraphNode a, f;
        CUDA_MEM_ALLOC_NODE_PARAMS p = { .bytesize = n };
        p.poolProps.allocType = 1;
        p.poolProps.location = (CUmemLocation){ CU_MEM_LOCATION_TYPE_DEVICE, 0 };
        CHECK(failures, g.create(&graph, 0) == CUDA_SUCCESS, "cuGraphCreate");
        CHECK(failures, g.add_alloc(&a, graph, NULL, 0, &p) == CUDA_SUCCESS && p.dptr,
              "cuGraphAddMemAllocNode");
        CHECK(failures, g.add_free(&f, graph, &a, 1, p.dptr) == CUDA_SUCCESS, "cuGraphAddMemFreeNode");
        return graph;
}

/* The same captured from a stream: cuMemAllocAsync, a kernel, cuMemFreeAsync. */
static CUgraph captured_graph(uint64_t n) {
        CUstream s;
        CUgraph graph = NULL;
        CUdeviceptr p = 0;
        uint64_t ns = 1000;
        void *params[] = { &ns };
        CHECK(failures, g.stream_create(&s, 0) == CUDA_SUCCESS, "cuStreamCreate");
        CHECK(failures, g.begin(s, 0) == CUDA_SUCCESS, "cuStreamBeginCapture");
        uint64_t used = tenant_slice_used(), device = cu.device_used();
        CHECK(failures, g.alloc_async(&p, n, s) == CUDA_SUCCESS && p, "captured cuMemAllocAsync");
        CHECK(failures, tenant_slice_used() == used && cu.device_used() == device,
              "a captured allocation was charged (%llu -> %llu MiB)", (unsigned long long) (used / MiB),
              (unsigned long long) (tenant_slice_used() / MiB));
        CHECK(failures, cu.launch(cu.busy, 1, 1, 1, 1, 1, 1, 0, s, params, NULL) == CUDA_SUCCESS,
              "captured kernel");
        CHECK(failures, g.free_async(p, s) == CUDA_SUCCESS, "captured cuMemFreeAsync");
        CHECK(failures, g.end(s, &graph) == CUDA_SUCCESS && graph, "cuStreamEndCapture");
        return graph;
}

static void check_graphs(uint64_t q) {
        CUgraphExec e1, e2;
        CUdeviceptr a, b;
        CUgraph g1 = built_graph(24 * MiB), g2 = captured_graph(15 * MiB); /* 15: 16 MiB in 2 MiB pages */
        CHECK(failures, g.instantiate(&e1, g1, 0) == CUDA_SUCCESS, "instantiate g1");
        CHECK(failures, g.instantiate(&e2, g2, 0) == CUDA_SUCCESS, "instantiate g2");
        EXPECT_USED(0); /* nothing is allocated before a launch */

        CHECK(failures, cu.graph_launch(e1, NULL) == CUDA_SUCCESS, "launch g1");
        EXPECT_USED(24 * MiB);
        CHECK(failures, graph_reserved() == 24 * MiB, "graph pool %llu",
              (unsigned long long) graph_reserved());
        CHECK(failures, cu.graph_launch(e1, NULL) == CUDA_SUCCESS, "relaunch g1");
        cu.sync();
        EXPECT_USED(24 * MiB); /* its memory is reused */

        /* 30 + 24 cached + 16 > 64: g1's cached memory is trimmed, then g2 fits. */
        CHECK(failures, cu.mem_alloc(&a, 30 * MiB) == CUDA_SUCCESS, "30 MiB");
        CHECK(failures, cu.graph_launch(e2, NULL) == CUDA_SUCCESS, "launch g2 after a trim");
        cu.sync();
        EXPECT_USED(46 * MiB);

        /* A plain allocation trims the graph pool before it is refused, too. */
        CHECK(failures, cu.mem_alloc(&b, 20 * MiB) == CUDA_SUCCESS,
              "20 MiB with 16 MiB of graph memory cached");
        EXPECT_USED(50 * MiB);
        CHECK(failures, graph_reserved() == 0, "graph pool %llu after the trim",
              (unsigned long long) graph_reserved());

        /* Over the quota: refused, exactly CUDA_ERROR_OUT_OF_MEMORY, nothing allocated, nothing run. */
        uint64_t device = cu.device_used();
        CUresult r = cu.graph_launch(e1, NULL);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "launch over the quota: rc %d", r);
        r = g.upload(e1, NULL);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "upload over the quota: rc %d", r);
        CHECK(failures, cu.device_used() == device && graph_reserved() == 0,
              "a refused launch allocated: %llu -> %llu", (unsigned long long) device,
              (unsigned long long) cu.device_used());
        EXPECT_USED(50 * MiB);

        /* Room again: an upload backs (and charges) it, the launch after it costs nothing more. */
        cu.mem_free(b);
        CHECK(failures, g.upload(e1, NULL) == CUDA_SUCCESS, "upload g1");
        EXPECT_USED(54 * MiB);
        CHECK(failures, cu.graph_launch(e1, NULL) == CUDA_SUCCESS, "launch g1 after its upload");
        cu.sync();
        EXPECT_USED(54 * MiB);

        CHECK(failures, g.exec_destroy(e1) == CUDA_SUCCESS, "destroy g1");
        EXPECT_USED(54 * MiB); /* destroyed, its memory is still the pool's */
        CHECK(failures, g.trim(0) == CUDA_SUCCESS, "cuDeviceGraphMemTrim");
        EXPECT_USED(30 * MiB); /* trimmed: the pool is empty */

        /* Instantiate-and-upload in one call is reserved first as well. */
        CUgraphExec e3;
        CUgraph g3 = built_graph(12 * MiB);
        CUDA_GRAPH_INSTANTIATE_PARAMS ip = { .flags = CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD };
        CHECK(failures, cu.mem_alloc(&b, 30 * MiB) == CUDA_SUCCESS, "30 MiB more");
        device = cu.device_used();
        r = g.instantiate_params(&e3, g3, &ip);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "instantiate+upload of 12 MiB over the quota: rc %d",
              r);
        CHECK(failures, cu.device_used() == device, "a refused instantiate+upload allocated");
        EXPECT_USED(60 * MiB);
        cu.mem_free(b);
        CHECK(failures, g.instantiate_params(&e3, g3, &ip) == CUDA_SUCCESS, "instantiate+upload of 12 MiB");
        EXPECT_USED(42 * MiB);

        g.exec_destroy(e2);
        g.exec_destroy(e3);
        cu.sync(); /* the upload is stream-ordered: done before the trim */
        g.trim(0);
        cu.mem_free(a);
        EXPECT_USED(0);
        g.destroy(g1);
        g.destroy(g2);
        g.destroy(g3);
        (void) q;
}

/* The ABIs with a log buffer: cuGraphInstantiate at 10000 (the first, which NVIDIA's cudart 13
 * still asks for) and at 11000 (_v2). Each must be the shim's, run that very ABI, and have its
 * executable graph's allocations charged at launch like the others. */
static void check_log_abis(void) {
        static const struct {
                int version;
                const char *abi;
        } abis[] = {
                { 10000, "cuGraphInstantiate" },
                { 11000, "cuGraphInstantiate_v2" },
        };
        for (size_t i = 0; i < ELEMENTSOF(abis); i++) {
                PFN_cuGraphInstantiate_v11000 inst = get("cuGraphInstantiate", abis[i].version, 0);
                CHECK(failures, in_shim((void *) inst), "cuGraphInstantiate@%d not wrapped", abis[i].version);
                if (!inst)
                        continue;
                CUgraph graph = built_graph(8 * MiB);
                CUgraphExec e;
                char log[64];
                CHECK(failures, inst(&e, graph, NULL, log, sizeof(log)) == CUDA_SUCCESS, "instantiate@%d",
                      abis[i].version);
                CHECK(failures, streq(cu.last_call(), abis[i].abi), "cuGraphInstantiate@%d ran %s",
                      abis[i].version, cu.last_call());
                EXPECT_USED(0);
                CHECK(failures, cu.graph_launch(e, NULL) == CUDA_SUCCESS, "launch of the @%d graph",
                      abis[i].version);
                cu.sync();
                EXPECT_USED(8 * MiB);
                g.exec_destroy(e);
                g.trim(0);
                EXPECT_USED(0);
                g.destroy(graph);
        }
}

int tenant_graph(void) {
        struct slice *s = tenant_slice();
        if (!s || s->quota != 64 * MiB) {
                fprintf(stderr, "tenant: graph needs a slice of 64 MiB\n");
                return 1;
        }
        *(void **) &g.create = get("cuGraphCreate", 12040, 0);
        *(void **) &g.add_alloc = get("cuGraphAddMemAllocNode", 12040, 0);
        *(void **) &g.add_free = get("cuGraphAddMemFreeNode", 12040, 0);
        *(void **) &g.instantiate = get("cuGraphInstantiate", 12040, 0);
        *(void **) &g.instantiate_params = get("cuGraphInstantiateWithParams", 12040, 0);
        *(void **) &g.upload = get("cuGraphUpload", 12040, 0);
        *(void **) &g.exec_destroy = get("cuGraphExecDestroy", 12040, 0);
        *(void **) &g.destroy = get("cuGraphDestroy", 12040, 0);
        *(void **) &g.attr = get("cuDeviceGetGraphMemAttribute", 12040, 0);
        *(void **) &g.trim = get("cuDeviceGraphMemTrim", 12040, 0);
        *(void **) &g.stream_create = get("cuStreamCreate", 12040, 0);
        *(void **) &g.begin = get("cuStreamBeginCapture", 12040, 0);
        *(void **) &g.end = get("cuStreamEndCapture", 12040, 0);
        *(void **) &g.alloc_async = get("cuMemAllocAsync", 12040, 0);
        *(void **) &g.free_async = get("cuMemFreeAsync", 12040, 0);
        /* The entry points that allocate must be the shim's (resolved by their real address). */
        CHECK(failures,
              in_shim((void *) g.instantiate) && in_shim((void *) g.upload) &&
                      in_shim((void *) g.instantiate_params) && in_shim((void *) cu.graph_launch),
              "graph entry points not wrapped");
        check_graphs(s->quota);
        check_log_abis();
        printf("graph: %d failure(s)\n", failures);
        return failures ? 1 : 0;
}

int tenant_twogpu(void) {
        struct slice *s = tenant_slice();
        CUdevice d0, d1;
        CUcontext c0, c1;
        if (!s || cu.device_get(&d0, 0) != CUDA_SUCCESS || cu.device_get(&d1, 1) != CUDA_SUCCESS ||
            cu.retain(&c0, d0) != CUDA_SUCCESS || cu.retain(&c1, d1) != CUDA_SUCCESS) {
                fprintf(stderr, "tenant: twogpu needs a slice and two devices\n");
                return 1;
        }
        PFN_cuMemCreate_v10020 create = get("cuMemCreate", 12040, 0);
        PFN_cuMemRelease_v10020 release = get("cuMemRelease", 12040, 0);
        CUdeviceptr p1 = 0, p0 = 0;
        CUmemGenericAllocationHandle h;
        CUmemAllocationProp prop = { .type = 1, .location = { CU_MEM_LOCATION_TYPE_DEVICE, 1 } };

        /* Device 1 first (the slice's GPU, by bus id or as the first one used). */
        cu.set_current(c1);
        CHECK(failures, cu.mem_alloc(&p1, 8 * MiB) == CUDA_SUCCESS, "8 MiB on device 1");
        EXPECT_USED(8 * MiB);
        CHECK(failures, create(&h, 2 * MiB, &prop, 0) == CUDA_SUCCESS, "cuMemCreate on device 1");
        EXPECT_USED(10 * MiB);
        release(h);

        /* Device 0 is another GPU: refused, not charged, not allocated, whichever way it is asked. */
        cu.set_current(c0);
        uint64_t device = cu.device_used();
        CUresult r = cu.mem_alloc(&p0, 8 * MiB);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY, "8 MiB on device 0: rc %d", r);
        prop.location.id = 0;
        cu.set_current(c1);
        r = create(&h, 2 * MiB, &prop, 0);
        CHECK(failures, r == CUDA_ERROR_OUT_OF_MEMORY,
              "cuMemCreate on device 0 from device 1's context: rc %d", r);
        CHECK(failures, cu.device_used() == device, "memory was allocated on the other GPU");
        EXPECT_USED(8 * MiB);

        cu.mem_free(p1);
        EXPECT_USED(0);
        printf("twogpu: %d failure(s)\n", failures);
        return failures ? 1 : 0;
}
