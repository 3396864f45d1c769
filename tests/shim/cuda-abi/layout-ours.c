/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* layout-ours.c — cuda-abi.h's list over the shim's own declarations (shim/cuda-types.h). */
#include <stdint.h>

#include "cuda-abi.h"
#include "../../../shim/cuda-types.h"

const struct cuda_abi_row cuda_abi_ours[] = { CUDA_ABI_LIST(CUDA_ABI_T, CUDA_ABI_F, CUDA_ABI_C) };
const size_t cuda_abi_ours_n = sizeof(cuda_abi_ours) / sizeof(cuda_abi_ours[0]);
