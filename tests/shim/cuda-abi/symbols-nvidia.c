/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * symbols-nvidia.c — which exact symbol a program compiled against NVIDIA's cuda.h calls for each
 * name the shim knows: cuMemAlloc is cuMemAlloc_v2, cuGraphInstantiate is cuGraphInstantiateWithFlags
 * since CUDA 12, and with CUDA_API_PER_THREAD_DEFAULT_STREAM (nvcc --default-stream per-thread)
 * cuLaunchKernel is cuLaunchKernel_ptsz. Built twice, without and with that macro, as
 * CUDA_ABI_SYMBOLS = cuda_abi_symbols_default / cuda_abi_symbols_ptds.
 */
#include "../../../shim/cuda-types.h"
#include "../../../shim/entries.h"
#include "cuda-abi.h"

#if !defined(SHIM_WITH_NVIDIA_CUDA_H) || !defined(CUDA_ABI_SYMBOLS) || defined(__CUDA_API_VERSION_INTERNAL)
#error "symbols-nvidia.c is built against NVIDIA's cuda.h, as a program would be, only"
#endif

#define ABI_STR(x)     #x
#define ABI_XSTR(x)    ABI_STR(x)
#define ABI_CAT(a, b)  a##b
#define ABI_XCAT(a, b) ABI_CAT(a, b)

/* base is written into the row unexpanded and expanded: cuda.h's #define decides the second */
#define ABI_SYMBOL_ROW(sym, base, ver, probe, kind, pfn) { #base, ABI_XSTR(base) },
const struct cuda_abi_symbol CUDA_ABI_SYMBOLS[] = { SHIM_ENTRIES(ABI_SYMBOL_ROW) };
const size_t ABI_XCAT(CUDA_ABI_SYMBOLS, _n) = sizeof(CUDA_ABI_SYMBOLS) / sizeof(CUDA_ABI_SYMBOLS[0]);
