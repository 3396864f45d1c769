/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* layout-nvidia.c — cuda-abi.h's list over NVIDIA's cuda.h (built with SHIM_WITH_NVIDIA_CUDA_H,
 * which makes shim/cuda-types.h include NVIDIA's headers instead of declaring its own). */
#include <stdint.h>

#include "cuda-abi.h"
#include "../../../shim/cuda-types.h"

#ifndef SHIM_WITH_NVIDIA_CUDA_H
#error "layout-nvidia.c is built against NVIDIA's cuda.h only"
#endif

const struct cuda_abi_row cuda_abi_nvidia[] = { CUDA_ABI_LIST(CUDA_ABI_T, CUDA_ABI_F, CUDA_ABI_C) };
const size_t cuda_abi_nvidia_n = sizeof(cuda_abi_nvidia) / sizeof(cuda_abi_nvidia[0]);
