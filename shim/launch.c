/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * launch.c — the launches that put work on the GPU, gated by the slice's time slices (turn.c):
 * cuLaunchKernel, cuLaunchKernelEx, cuLaunchCooperativeKernel and cuGraphLaunch, each in its
 * legacy and per-thread-default-stream (_ptsz) ABI. A graph is one launch however many kernels
 * it holds; its GPU time is measured like any other work of the turn, so graphs cannot escape
 * the shares, and its allocation nodes cannot escape the quota (graph.c). Also cuStreamDestroy_v2, so that a measurement never uses a dead stream handle.
 */
#include "shim.h"

#define GATED(per_thread, stream, call)                             \
        ({                                                          \
                shim_turn_gate((stream), (per_thread));             \
                CUresult _r = (call);                               \
                if (_r == CUDA_SUCCESS)                             \
                        shim_turn_launched((stream), (per_thread)); \
                _r;                                                 \
        })

static CUresult launch_kernel(enum shim_fn fn, bool per_thread, CUfunction f, unsigned gx, unsigned gy,
                              unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, CUstream s,
                              void **params, void **extra) {
        shim_pfn_cuLaunchKernel real = (shim_pfn_cuLaunchKernel) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        return GATED(per_thread, s, real(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra));
}

CUresult shim_cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned shmem, CUstream s, void **params, void **extra) {
        return launch_kernel(FN_cuLaunchKernel, false, f, gx, gy, gz, bx, by, bz, shmem, s, params, extra);
}
SHIM_EXPORT(cuLaunchKernel);

CUresult shim_cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                  unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                                  void **extra) {
        return launch_kernel(FN_cuLaunchKernel_ptsz, true, f, gx, gy, gz, bx, by, bz, shmem, s, params,
                             extra);
}
SHIM_EXPORT(cuLaunchKernel_ptsz);

static CUresult launch_ex(enum shim_fn fn, bool per_thread, const CUlaunchConfig *config, CUfunction f,
                          void **params, void **extra) {
        shim_pfn_cuLaunchKernelEx real = (shim_pfn_cuLaunchKernelEx) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!config)
                return real(config, f, params, extra);
        return GATED(per_thread, config->hStream, real(config, f, params, extra));
}

CUresult shim_cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params, void **extra) {
        return launch_ex(FN_cuLaunchKernelEx, false, config, f, params, extra);
}
SHIM_EXPORT(cuLaunchKernelEx);

CUresult shim_cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **params, void **extra) {
        return launch_ex(FN_cuLaunchKernelEx_ptsz, true, config, f, params, extra);
}
SHIM_EXPORT(cuLaunchKernelEx_ptsz);

static CUresult launch_cooperative(enum shim_fn fn, bool per_thread, CUfunction f, unsigned gx, unsigned gy,
                                   unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                   CUstream s, void **params) {
        shim_pfn_cuLaunchCooperativeKernel real = (shim_pfn_cuLaunchCooperativeKernel) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        return GATED(per_thread, s, real(f, gx, gy, gz, bx, by, bz, shmem, s, params));
}

CUresult shim_cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                        unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params) {
        return launch_cooperative(FN_cuLaunchCooperativeKernel, false, f, gx, gy, gz, bx, by, bz, shmem, s,
                                  params);
}
SHIM_EXPORT(cuLaunchCooperativeKernel);

CUresult shim_cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                             unsigned by, unsigned bz, unsigned shmem, CUstream s,
                                             void **params) {
        return launch_cooperative(FN_cuLaunchCooperativeKernel_ptsz, true, f, gx, gy, gz, bx, by, bz, shmem,
                                  s, params);
}
SHIM_EXPORT(cuLaunchCooperativeKernel_ptsz);

/* A graph's allocation nodes are backed at launch: reserved before, settled after (graph.c). */
static CUresult graph_launch(enum shim_fn fn, bool per_thread, CUgraphExec g, CUstream s) {
        shim_pfn_cuGraphLaunch real = (shim_pfn_cuGraphLaunch) shim_real_get(fn);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        uint64_t token;
        CUresult r = shim_graph_before(g, &token);
        if (r != CUDA_SUCCESS)
                return r;
        r = GATED(per_thread, s, real(g, s));
        shim_graph_after(g, token, r);
        return r;
}

CUresult shim_cuGraphLaunch(CUgraphExec g, CUstream s) {
        return graph_launch(FN_cuGraphLaunch, false, g, s);
}
SHIM_EXPORT(cuGraphLaunch);

CUresult shim_cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) {
        return graph_launch(FN_cuGraphLaunch_ptsz, true, g, s);
}
SHIM_EXPORT(cuGraphLaunch_ptsz);

CUresult shim_cuStreamDestroy_v2(CUstream s) {
        shim_pfn_cuStreamDestroy_v2 real = REAL(cuStreamDestroy_v2);
        if (!real)
                return CUDA_ERROR_NOT_INITIALIZED;
        shim_turn_stream_destroyed(s);
        return real(s);
}
SHIM_EXPORT(cuStreamDestroy_v2);
