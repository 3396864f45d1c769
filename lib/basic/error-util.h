/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* error-util.h — filling struct vgpu_error inside the library. */
#pragma once

#include "vgpu/error.h"
#include "macro.h"

/*
 * Record a failure and return code (a negative errno) so that callers can write
 *     return vgpu_error_set(err, -ENOENT, "%s: no such parent device", bdf);
 * err may be NULL. The message should say what failed and why, never only an errno:
 * strerror(-code) is appended when append_errno is used.
 */
int vgpu_error_set(struct vgpu_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Same, with ": <strerror(-code)>" appended. */
int vgpu_error_set_errno(struct vgpu_error *err, int code, const char *fmt, ...) _printf_(3, 4);
