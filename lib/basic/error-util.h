/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* error-util.h — filling struct vgpu_error inside the library. */
#pragma once

#include "vgpu/error.h"
#include "macro.h"

/* vgpu_error_set() and vgpu_error_set_errno(), which callers inside the library use the same
 * way, are exported: vgpu/error.h. The message should say what failed and why, never only an
 * errno. */
