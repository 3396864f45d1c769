/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * graph.c — CUDA graph memory nodes against the slice's quota. A graph's allocation nodes
 * (cuGraphAddMemAllocNode, or cuMemAllocAsync captured from a stream) take no memory when they
 * are created or instantiated: the driver backs them from the device's graph memory pool when
 * the executable graph is launched or uploaded, keeps that memory reserved for later launches,
 * and gives back what no graph uses only on cuDeviceGraphMemTrim. So the pool is charged like a
 * stream-ordered pool (pool.c), by its reserved size (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT).
 *
 * Reserve first: at instantiation the graph's allocation nodes are summed (rounded up to the
 * 2 MiB page of the pool), and before a launch or upload that may need new memory that sum is
 * reserved against the quota. Over the quota the pool is trimmed (its unused memory goes back
 * to the device) and the reservation tried again; if it still does not fit the launch is
 * refused with CUDA_ERROR_OUT_OF_MEMORY and nothing runs or is allocated: the error the driver
 * itself returns when it cannot back a graph's allocations (CUDA programming guide, "Graph
 * memory nodes"), so frameworks take their usual out-of-memory path. After the call the pool's
 * charge is moved to its new reserved size and the reservation returned.
 *
 * An executable graph that was backed since the pool was last trimmed reuses its memory (the
 * driver orders a relaunch after the previous one), so its relaunches reserve nothing; a graph
 * that, once backed, made the pool grow by less than its sum took memory cached for others,
 * which then count as unbacked again. Graphs without allocation nodes cost one atomic load.
 */
#include <stdlib.h>

#include "shim.h"

#define DEVICES_MAX 64
#define GRAPH_PAGE  (UINT64_C(2) << 20)

struct exec_rec {
        CUgraphExec exec;
        CUdevice dev;
        uint64_t need;       /* the allocation nodes' bytes, rounded up to pages */
        uint64_t backed_gen; /* == gen[dev]: backed since the last trim */
};

static pthread_mutex_t graph_lock = PTHREAD_MUTEX_INITIALIZER;
static struct exec_rec *execs;
static size_t n_execs, cap_execs;
static _Atomic size_t n_mem_execs;    /* fast path: no graph of ours allocates */
static uint64_t charged[DEVICES_MAX]; /* what each device's graph pool is charged */
static uint64_t gen[DEVICES_MAX];     /* bumped when backings may have been lost */
static __thread bool holding;         /* this thread holds graph_lock: no trim */

static uint64_t reserved(CUdevice dev) {
        shim_pfn_cuDeviceGetGraphMemAttribute get = REAL(cuDeviceGetGraphMemAttribute);
        cuuint64_t v = 0;
        if (!get || get(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &v) != CUDA_SUCCESS)
                return 0;
        return v;
}

/* Charge dev's pool what it reserves now, plus `held` already reserved for it (never refused:
 * memory the driver holds is charged as far as the quota allows). Lock held. */
static void dev_sync(CUdevice dev, uint64_t held) {
        uint64_t have = charged[dev] + held, now = reserved(dev), extra;
        if (now < have)
                shim_uncharge(have - now);
        else if (now > have && shim_charge_dev(dev, now - have, &extra) == CUDA_SUCCESS)
                have += extra;
        charged[dev] = now < have ? now : have;
}

static void lock(void) {
        pthread_mutex_lock(&graph_lock);
        holding = true;
}

static void unlock(void) {
        holding = false;
        pthread_mutex_unlock(&graph_lock);
}

static void dev_trim(CUdevice dev) {
        shim_pfn_cuDeviceGraphMemTrim trim = REAL(cuDeviceGraphMemTrim);
        if (trim && trim(dev) == CUDA_SUCCESS) {
                gen[dev]++;
                dev_sync(dev, 0);
        }
}

void shim_graphs_trim(void) {
        if (shim.mode != SHIM_ON || holding || atomic_load(&n_mem_execs) == 0)
                return;
        /* Only if free: pool.c charges (and so trims) under its own lock, and we charge under
         * ours, which may trim the pools; waiting here could deadlock the two. */
        if (pthread_mutex_trylock(&graph_lock) != 0)
                return;
        holding = true;
        for (CUdevice dev = 0; dev < DEVICES_MAX; dev++)
                if (charged[dev])
                        dev_trim(dev);
        unlock();
}

void shim_graphs_sync(void) {
        if (shim.mode != SHIM_ON || atomic_load(&n_mem_execs) == 0)
                return;
        lock();
        for (CUdevice dev = 0; dev < DEVICES_MAX; dev++)
                if (charged[dev])
                        dev_sync(dev, 0);
        unlock();
}

static struct exec_rec *find(CUgraphExec exec) {
        for (size_t i = 0; i < n_execs; i++)
                if (execs[i].exec == exec)
                        return &execs[i];
        return NULL;
}

/* The bytes the allocation nodes of graph need, and their device (-1: none). */
static uint64_t graph_need(CUgraph graph, CUdevice *ret_dev) {
        shim_pfn_cuGraphGetNodes nodes = REAL(cuGraphGetNodes);
        shim_pfn_cuGraphNodeGetType type = REAL(cuGraphNodeGetType);
        shim_pfn_cuGraphMemAllocNodeGetParams params = REAL(cuGraphMemAllocNodeGetParams);
        *ret_dev = -1;
        size_t n = 0;
        if (!graph || !nodes || !type || !params || nodes(graph, NULL, &n) != CUDA_SUCCESS || n == 0)
                return 0;
        CUgraphNode *all = calloc(n, sizeof(*all));
        if (!all)
                return 0;
        uint64_t sum = 0;
        if (nodes(graph, all, &n) == CUDA_SUCCESS)
                for (size_t i = 0; i < n; i++) {
                        CUgraphNodeType t;
                        CUDA_MEM_ALLOC_NODE_PARAMS p = {};
                        if (type(all[i], &t) != CUDA_SUCCESS || t != CU_GRAPH_NODE_TYPE_MEM_ALLOC ||
                            params(all[i], &p) != CUDA_SUCCESS)
                                continue;
                        sum += p.bytesize;
                        if (p.poolProps.location.type == CU_MEM_LOCATION_TYPE_DEVICE)
                                *ret_dev = p.poolProps.location.id;
                }
        free(all);
        if (sum && *ret_dev < 0)
                *ret_dev = shim_current_device();
        return (sum + GRAPH_PAGE - 1) / GRAPH_PAGE * GRAPH_PAGE;
}

static void remember(CUgraphExec exec, CUdevice dev, uint64_t need) {
        if (!need || dev < 0 || dev >= DEVICES_MAX)
                return;
        lock();
        if (n_execs == cap_execs) {
                size_t n = cap_execs ? cap_execs * 2 : 16;
                struct exec_rec *e = realloc(execs, n * sizeof(*e));
                if (!e) {
                        unlock();
                        shim_log(SHIM_LOG_WARNING, "out of memory: a graph's allocations are charged late");
                        return;
                }
                execs = e;
                cap_execs = n;
        }
        execs[n_execs++] =
                (struct exec_rec){ .exec = exec, .dev = dev, .need = need, .backed_gen = UINT64_MAX };
        atomic_fetch_add(&n_mem_execs, 1);
        unlock();
}

/*
 * Before a launch / upload of exec. On success the lock stays held until shim_graph_after()
 * (the pool's size is read around the call, as pool.c does); *ret_token is what was reserved.
 */
CUresult shim_graph_before(CUgraphExec exec, uint64_t *ret_token) {
        *ret_token = 0;
        if (shim.mode != SHIM_ON || atomic_load_explicit(&n_mem_execs, memory_order_relaxed) == 0)
                return CUDA_SUCCESS;
        lock();
        struct exec_rec *rec = find(exec);
        if (!rec) {
                unlock();
                return CUDA_SUCCESS;
        }
        dev_sync(rec->dev, 0);
        if (rec->backed_gen == gen[rec->dev])
                return CUDA_SUCCESS; /* its memory is in the pool already */
        CUresult r = shim_charge_dev(rec->dev, rec->need, ret_token);
        if (r == CUDA_ERROR_OUT_OF_MEMORY) {
                dev_trim(rec->dev);
                shim_log(SHIM_LOG_DEBUG, "graph memory trimmed to %llu bytes to make room",
                         (unsigned long long) charged[rec->dev]);
                r = shim_charge_dev(rec->dev, rec->need, ret_token);
        }
        if (r != CUDA_SUCCESS) {
                shim_log(SHIM_LOG_INFO, "slice %s: graph launch refused: its allocations need %llu bytes",
                         shim.slice->name, (unsigned long long) rec->need);
                unlock();
        }
        return r;
}

void shim_graph_after(CUgraphExec exec, uint64_t token, CUresult r) {
        if (!holding)
                return; /* shim_graph_before() found nothing to do */
        struct exec_rec *rec = find(exec);
        if (rec) {
                CUdevice dev = rec->dev;
                uint64_t before = charged[dev];
                dev_sync(dev, token);
                if (r == CUDA_SUCCESS && rec->backed_gen != gen[dev]) {
                        /* Grew by less than it needs: it reused memory cached for other graphs. */
                        if (charged[dev] < before + rec->need)
                                gen[dev]++;
                        rec->backed_gen = gen[dev];
                }
        } else
                shim_uncharge(token);
        unlock();
}

/* Instantiation: the sum is taken from the graph, before the call (an upload may be part of it). */
static CUresult instantiate(CUgraphExec *exec, CUgraph graph, bool upload,
                            CUresult (*call)(CUgraphExec *, CUgraph, void *), void *userdata) {
        if (shim.mode != SHIM_ON || !exec)
                return call(exec, graph, userdata);
        CUdevice dev;
        uint64_t need = graph_need(graph, &dev), held = 0;
        if (need && upload) {
                /* Backed at once: reserve as for an upload of an unbacked graph. */
                if (shim_charge_dev(dev, need, &held) != CUDA_SUCCESS)
                        return CUDA_ERROR_OUT_OF_MEMORY;
        }
        CUresult r = call(exec, graph, userdata);
        if (r == CUDA_SUCCESS)
                remember(*exec, dev, need);
        if (held) {
                lock();
                dev_sync(dev, held);
                struct exec_rec *rec = r == CUDA_SUCCESS ? find(*exec) : NULL;
                if (rec)
                        rec->backed_gen = gen[dev];
                unlock();
        }
        return r;
}

/* The two ABIs with a log buffer (same signature): cuGraphInstantiate (10000), which NVIDIA's
 * cudart 13 still asks for, and cuGraphInstantiate_v2 (11000). */
struct with_log {
        enum shim_fn fn;
        CUgraphNode *err;
        char *log;
        size_t size;
};

static CUresult call_log(CUgraphExec *exec, CUgraph graph, void *userdata) {
        struct with_log *a = userdata;
        shim_pfn_cuGraphInstantiate_v2 real = (shim_pfn_cuGraphInstantiate_v2) shim_real_get(a->fn);
        return real ? real(exec, graph, a->err, a->log, a->size) : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult shim_cuGraphInstantiate_v2(CUgraphExec *exec, CUgraph graph, CUgraphNode *err, char *log,
                                    size_t size) {
        struct with_log a = { FN_cuGraphInstantiate_v2, err, log, size };
        return instantiate(exec, graph, false, call_log, &a);
}
SHIM_EXPORT(cuGraphInstantiate_v2);

CUresult shim_cuGraphInstantiate(CUgraphExec *exec, CUgraph graph, CUgraphNode *err, char *log, size_t size) {
        struct with_log a = { FN_cuGraphInstantiate, err, log, size };
        return instantiate(exec, graph, false, call_log, &a);
}
SHIM_EXPORT(cuGraphInstantiate);

static CUresult call_flags(CUgraphExec *exec, CUgraph graph, void *userdata) {
        shim_pfn_cuGraphInstantiateWithFlags real = REAL(cuGraphInstantiateWithFlags);
        return real ? real(exec, graph, *(unsigned long long *) userdata) : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult shim_cuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph graph, unsigned long long flags) {
        return instantiate(exec, graph, false, call_flags, &flags);
}
SHIM_EXPORT(cuGraphInstantiateWithFlags);

struct with_params {
        enum shim_fn fn;
        CUDA_GRAPH_INSTANTIATE_PARAMS *params;
};

static CUresult call_params(CUgraphExec *exec, CUgraph graph, void *userdata) {
        struct with_params *a = userdata;
        shim_pfn_cuGraphInstantiateWithParams real =
                (shim_pfn_cuGraphInstantiateWithParams) shim_real_get(a->fn);
        return real ? real(exec, graph, a->params) : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult shim_cuGraphInstantiateWithParams(CUgraphExec *exec, CUgraph graph,
                                           CUDA_GRAPH_INSTANTIATE_PARAMS *p) {
        struct with_params a = { FN_cuGraphInstantiateWithParams, p };
        return instantiate(exec, graph, p && (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD), call_params,
                           &a);
}
SHIM_EXPORT(cuGraphInstantiateWithParams);

CUresult shim_cuGraphInstantiateWithParams_ptsz(CUgraphExec *exec, CUgraph graph,
                                                CUDA_GRAPH_INSTANTIATE_PARAMS *p) {
        struct with_params a = { FN_cuGraphInstantiateWithParams_ptsz, p };
        return instantiate(exec, graph, p && (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD), call_params,
                           &a);
}
SHIM_EXPORT(cuGraphInstantiateWithParams_ptsz);

static CUresult upload(enum shim_fn fn, CUgraphExec exec, CUstream s) {
        shim_pfn_cuGraphUpload real = (shim_pfn_cuGraphUpload) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        uint64_t token;
        CUresult r = shim_graph_before(exec, &token);
        if (r != CUDA_SUCCESS)
                return r;
        r = real(exec, s);
        shim_graph_after(exec, token, r);
        return r;
}

CUresult shim_cuGraphUpload(CUgraphExec exec, CUstream s) {
        return upload(FN_cuGraphUpload, exec, s);
}
SHIM_EXPORT(cuGraphUpload);

CUresult shim_cuGraphUpload_ptsz(CUgraphExec exec, CUstream s) {
        return upload(FN_cuGraphUpload_ptsz, exec, s);
}
SHIM_EXPORT(cuGraphUpload_ptsz);

CUresult shim_cuGraphExecDestroy(CUgraphExec exec) {
        shim_pfn_cuGraphExecDestroy real = REAL(cuGraphExecDestroy);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (atomic_load(&n_mem_execs) > 0) {
                /* Its memory stays in the pool (still charged) until a trim gives it back. */
                lock();
                struct exec_rec *rec = find(exec);
                if (rec) {
                        *rec = execs[--n_execs];
                        atomic_fetch_sub(&n_mem_execs, 1);
                }
                unlock();
        }
        return real(exec);
}
SHIM_EXPORT(cuGraphExecDestroy);

CUresult shim_cuDeviceGraphMemTrim(CUdevice dev) {
        shim_pfn_cuDeviceGraphMemTrim real = REAL(cuDeviceGraphMemTrim);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (shim.mode != SHIM_ON || dev < 0 || dev >= DEVICES_MAX)
                return real(dev);
        lock();
        CUresult r = real(dev);
        if (r == CUDA_SUCCESS) {
                gen[dev]++;
                dev_sync(dev, 0);
        }
        unlock();
        return r;
}
SHIM_EXPORT(cuDeviceGraphMemTrim);

void shim_graphs_atfork_child(void) {
        pthread_mutex_init(&graph_lock, NULL);
        free(execs);
        execs = NULL;
        n_execs = cap_execs = 0;
        atomic_store(&n_mem_execs, 0);
        for (unsigned i = 0; i < DEVICES_MAX; i++)
                charged[i] = gen[i] = 0;
}
