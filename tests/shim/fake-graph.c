/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-graph.c — CUDA graphs in the fake driver, with the memory behaviour the shim must get
 * right: allocation nodes (cuGraphAddMemAllocNode, or cuMemAllocAsync on a capturing stream)
 * take nothing when created or instantiated; a launch or upload backs the executable graph's
 * allocations from its device's graph memory pool (fake-memory.c's pool, 2 MiB grains), reusing
 * the graph's own block when it is still in the pool, and fails with CUDA_ERROR_OUT_OF_MEMORY
 * when the device has no room; the graph frees its allocations when it ends (every allocation
 * of these graphs is freed inside the graph, like a captured step's temporaries), but the pool
 * keeps the memory reserved until cuDeviceGraphMemTrim. cuDeviceGetGraphMemAttribute reports
 * the pool's reserved and used bytes. A graph's kernels add up to one busy time (ns).
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "fake-cuda.h"

#define NODES_MAX       64
#define CAPTURE_VA_BASE UINT64_C(0x300000000000)

struct CUgraphNode_st {
        int type;
        size_t bytesize;
        CUdeviceptr dptr;
        int dev;
};

struct CUgraph_st {
        uint64_t ns;
        unsigned n;
        struct CUgraphNode_st nodes[NODES_MAX];
};

static _Atomic uint64_t next_va = CAPTURE_VA_BASE;

CUresult cuGraphCreate(CUgraph *g, unsigned flags) {
        (void) flags;
        if (!g)
                return CUDA_ERROR_INVALID_VALUE;
        *g = calloc(1, sizeof(**g));
        return *g ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult cuGraphDestroy(CUgraph g) {
        free(g);
        return CUDA_SUCCESS;
}

static struct CUgraphNode_st *add_node(CUgraph g, int type) {
        if (!g || g->n == NODES_MAX)
                return NULL;
        struct CUgraphNode_st *n = &g->nodes[g->n++];
        *n = (struct CUgraphNode_st){ .type = type, .dev = -1 };
        return n;
}

CUresult cuGraphAddMemAllocNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t n_deps,
                                CUDA_MEM_ALLOC_NODE_PARAMS *p) {
        (void) deps, (void) n_deps;
        LAST("cuGraphAddMemAllocNode");
        if (!node || !p || p->bytesize == 0 || p->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
                return CUDA_ERROR_INVALID_VALUE;
        struct CUgraphNode_st *n = add_node(g, CU_GRAPH_NODE_TYPE_MEM_ALLOC);
        if (!n)
                return CUDA_ERROR_OUT_OF_MEMORY;
        n->bytesize = p->bytesize;
        n->dev = p->poolProps.location.id;
        /* The address is fixed now; the memory behind it comes at launch. */
        n->dptr = p->dptr = atomic_fetch_add(&next_va, (p->bytesize + 0xfffff) & ~(uint64_t) 0xfffff);
        *node = n;
        return CUDA_SUCCESS;
}

CUresult cuGraphAddMemFreeNode(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t n_deps,
                               CUdeviceptr p) {
        (void) deps, (void) n_deps;
        struct CUgraphNode_st *n = node ? add_node(g, CU_GRAPH_NODE_TYPE_MEM_FREE) : NULL;
        if (!n)
                return CUDA_ERROR_INVALID_VALUE;
        n->dptr = p;
        *node = n;
        return CUDA_SUCCESS;
}

CUresult cuGraphGetNodes(CUgraph g, CUgraphNode *nodes, size_t *n) {
        if (!g || !n)
                return CUDA_ERROR_INVALID_VALUE;
        if (nodes) {
                size_t k = *n < g->n ? *n : g->n;
                for (size_t i = 0; i < k; i++)
                        nodes[i] = &g->nodes[i];
        }
        *n = g->n;
        return CUDA_SUCCESS;
}

CUresult cuGraphNodeGetType(CUgraphNode node, CUgraphNodeType *type) {
        if (!node || !type)
                return CUDA_ERROR_INVALID_VALUE;
        *type = node->type;
        return CUDA_SUCCESS;
}

CUresult cuGraphMemAllocNodeGetParams(CUgraphNode node, CUDA_MEM_ALLOC_NODE_PARAMS *p) {
        if (!node || !p || node->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC)
                return CUDA_ERROR_INVALID_VALUE;
        *p = (CUDA_MEM_ALLOC_NODE_PARAMS){ .bytesize = node->bytesize, .dptr = node->dptr };
        p->poolProps.allocType = 1;
        p->poolProps.location = (CUmemLocation){ CU_MEM_LOCATION_TYPE_DEVICE, node->dev };
        return CUDA_SUCCESS;
}

/* ---- stream capture ---- */

bool fake_capturing(CUstream s) {
        return s && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD && s->capture;
}

CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) {
        (void) mode;
        LAST("cuStreamBeginCapture_v2");
        if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD || s->capture)
                return CUDA_ERROR_INVALID_VALUE; /* the default streams cannot be captured */
        return cuGraphCreate(&s->capture, 0);
}

CUresult cuStreamEndCapture(CUstream s, CUgraph *g) {
        LAST("cuStreamEndCapture");
        if (!fake_capturing(s) || !g)
                return CUDA_ERROR_INVALID_VALUE;
        *g = s->capture;
        s->capture = NULL;
        return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *status) {
        if (!status)
                return CUDA_ERROR_INVALID_VALUE;
        *status = fake_capturing(s) ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
        return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing_ptsz(CUstream s, CUstreamCaptureStatus *status) {
        return cuStreamIsCapturing(s, status);
}

void fake_capture_kernel(CUstream s, uint64_t ns) {
        s->capture->ns += ns;
}

CUdeviceptr fake_capture_alloc(CUstream s, size_t n) {
        CUgraphNode node;
        CUDA_MEM_ALLOC_NODE_PARAMS p = { .bytesize = n };
        p.poolProps.location = (CUmemLocation){ CU_MEM_LOCATION_TYPE_DEVICE, fake_current_device() };
        return cuGraphAddMemAllocNode(&node, s->capture, NULL, 0, &p) == CUDA_SUCCESS ? p.dptr : 0;
}

void fake_capture_free(CUstream s, CUdeviceptr p) {
        CUgraphNode node;
        cuGraphAddMemFreeNode(&node, s->capture, NULL, 0, p);
}

/* ---- executable graphs ---- */

static CUresult instantiate(CUgraphExec *ret, CUgraph g) {
        if (!ret || !g)
                return CUDA_ERROR_INVALID_VALUE;
        struct CUgraphExec_st *e = calloc(1, sizeof(*e));
        if (!e)
                return CUDA_ERROR_OUT_OF_MEMORY;
        e->ns = g->ns;
        e->dev = fake_current_device();
        for (unsigned i = 0; i < g->n; i++)
                if (g->nodes[i].type == CU_GRAPH_NODE_TYPE_MEM_ALLOC) {
                        e->need += g->nodes[i].bytesize;
                        e->dev = g->nodes[i].dev;
                }
        *ret = e;
        return CUDA_SUCCESS;
}

/* Back the graph's allocations from its device's graph pool; freed in stream order by `release`. */
static CUresult back(CUgraphExec e, bool release) {
        if (!e->need)
                return CUDA_SUCCESS;
        struct CUmemPoolHandle_st *pool = fake_graph_pool(e->dev);
        CUdeviceptr p;
        if (!pool || fake_pool_back(pool, e->backing, e->need, &p) != CUDA_SUCCESS)
                return CUDA_ERROR_OUT_OF_MEMORY;
        e->backing = p;
        if (release)
                fake_queue_pool_free(pool, p);
        return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph g, unsigned long long flags) {
        (void) flags;
        LAST("cuGraphInstantiateWithFlags");
        return instantiate(e, g);
}

CUresult cuGraphInstantiate_v2(CUgraphExec *e, CUgraph g, CUgraphNode *err, char *log, size_t size) {
        (void) err, (void) log, (void) size;
        LAST("cuGraphInstantiate_v2");
        return instantiate(e, g);
}

/* The 10000 ABI, which NVIDIA's cudart 13 still asks for. */
CUresult cuGraphInstantiate(CUgraphExec *e, CUgraph g, CUgraphNode *err, char *log, size_t size) {
        (void) err, (void) log, (void) size;
        LAST("cuGraphInstantiate");
        return instantiate(e, g);
}

static CUresult instantiate_params(CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p) {
        if (!p)
                return CUDA_ERROR_INVALID_VALUE;
        CUresult r = instantiate(e, g);
        if (r == CUDA_SUCCESS && (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) &&
            (r = back(*e, true)) != CUDA_SUCCESS) {
                free(*e);
                *e = NULL;
        }
        p->result_out = r == CUDA_SUCCESS ? 0 : 1;
        return r;
}

CUresult cuGraphInstantiateWithParams(CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p) {
        LAST("cuGraphInstantiateWithParams");
        return instantiate_params(e, g, p);
}

CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p) {
        LAST("cuGraphInstantiateWithParams_ptsz");
        return instantiate_params(e, g, p);
}

/* A graph that only keeps the engine busy for ns (the share tests' "graph" tenants); plain malloc. */
CUresult fakecu_graph_busy(CUgraphExec *ret, uint64_t ns) {
        struct CUgraphExec_st *g = calloc(1, sizeof(*g));
        if (!g)
                return CUDA_ERROR_OUT_OF_MEMORY;
        g->ns = ns;
        *ret = g;
        return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec g) {
        LAST("cuGraphExecDestroy");
        free(g); /* its memory stays in the pool until a trim */
        return CUDA_SUCCESS;
}

static CUresult launch(CUgraphExec g) {
        if (!g)
                return CUDA_ERROR_INVALID_HANDLE;
        CUresult r = back(g, false);
        if (r != CUDA_SUCCESS)
                return r;
        fake_queue_kernel(g->ns);
        if (g->need)
                fake_queue_pool_free(fake_graph_pool(g->dev), g->backing);
        return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec g, CUstream s) {
        (void) s;
        LAST("cuGraphLaunch");
        return launch(g);
}

CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) {
        (void) s;
        LAST("cuGraphLaunch_ptsz");
        return launch(g);
}

CUresult cuGraphUpload(CUgraphExec g, CUstream s) {
        (void) s;
        LAST("cuGraphUpload");
        return g ? back(g, true) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuGraphUpload_ptsz(CUgraphExec g, CUstream s) {
        (void) s;
        LAST("cuGraphUpload_ptsz");
        return g ? back(g, true) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void *value) {
        struct CUmemPoolHandle_st *pool = fake_graph_pool(dev);
        if (!pool || dev >= fake_device_count() || !value)
                return CUDA_ERROR_INVALID_DEVICE;
        switch (attr) {
        case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
                return cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, value);
        case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
                return cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, value);
        default:
                return CUDA_ERROR_INVALID_VALUE;
        }
}

CUresult cuDeviceGraphMemTrim(CUdevice dev) {
        LAST("cuDeviceGraphMemTrim");
        struct CUmemPoolHandle_st *pool = fake_graph_pool(dev);
        if (!pool || dev >= fake_device_count())
                return CUDA_ERROR_INVALID_DEVICE;
        return cuMemPoolTrimTo(pool, 0); /* blocks of graphs still queued are in use: kept */
}
