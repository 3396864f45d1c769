/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * error.h — how libvgpu reports failure.
 *
 * Every fallible function returns 0 (or a positive count) on success and a negative errno on
 * failure, and fills a caller-provided struct vgpu_error with a message that names what was
 * being done, the file (and line and field, for configuration) and what was expected. The
 * library never prints; the CLI prints the message, the daemon returns it in a JSON body.
 */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_ERROR_MESSAGE_MAX 1024

struct vgpu_error {
        int code;                             /* negative errno, 0 when unset */
        char message[VGPU_ERROR_MESSAGE_MAX]; /* one line, no trailing newline */
};

/* Clear *err. Callers may pass the same struct to several calls; each failure overwrites it. */
void vgpu_error_clear(struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
