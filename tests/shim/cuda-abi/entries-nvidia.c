/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * entries-nvidia.c — the shim's table of driver entry points (SHIM_ENTRIES in shim/shim.h) against
 * NVIDIA's cuda.h, built with __CUDA_API_VERSION_INTERNAL: the mode NVIDIA builds libcuda in, where
 * cuda.h declares every exact ABI symbol (cuMemAlloc_v2, the legacy cuMemAlloc, cuLaunchKernel_ptsz)
 * under its own name. Each entry's symbol must be declared there with the very type of the PFN the
 * shim calls it through; the build stops otherwise. The rows let test-cuda-abi confirm that no
 * symbol was renamed by a cuda.h macro on the way, i.e. that the check looked at the right one.
 */
#include "../../../shim/shim.h"
#include "cuda-abi.h"

#if !defined(SHIM_WITH_NVIDIA_CUDA_H) || !defined(__CUDA_API_VERSION_INTERNAL)
#error "entries-nvidia.c is built against NVIDIA's cuda.h with __CUDA_API_VERSION_INTERNAL only"
#endif

#define ABI_STR(x)  #x
#define ABI_XSTR(x) ABI_STR(x)

#define ABI_ASSERT(sym, pfn)                                                \
        _Static_assert(__builtin_types_compatible_p(__typeof__(&sym), pfn), \
                       #sym ": cuda.h's prototype is not " #pfn);
#define ABI_ASSERT_N(sym, pfn)                             ABI_ASSERT(sym, pfn)
#define ABI_ASSERT_L(sym, pfn)                             ABI_ASSERT(sym, pfn)
#define ABI_ASSERT_P(sym, pfn)                             ABI_ASSERT(sym, pfn)
#define ABI_ASSERT_NV(sym, pfn)                            /* NVML: no nvml.h in a CUDA toolkit */
#define ABI_ENTRY_ASSERT(sym, base, ver, probe, kind, pfn) ABI_ASSERT_##probe(sym, pfn)
SHIM_ENTRIES(ABI_ENTRY_ASSERT)

/* what: the symbol as written in the table; value unused. name_seen: the same after expansion. */
#define ABI_ENTRY_ROW(sym, base, ver, probe, kind, pfn) { #sym, ABI_XSTR(sym) },
const struct cuda_abi_symbol cuda_abi_entries_nvidia[] = { SHIM_ENTRIES(ABI_ENTRY_ROW) };
const size_t cuda_abi_entries_nvidia_n = sizeof(cuda_abi_entries_nvidia) / sizeof(cuda_abi_entries_nvidia[0]);
const int cuda_abi_nvidia_version = CUDA_VERSION;
