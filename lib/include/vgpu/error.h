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

/*
 * Fill *err (may be NULL) with code (a negative errno) and a printf-style message, and return
 * code, so that a caller reporting its own failures the library's way writes
 *     return vgpu_error_set(err, -ENOENT, "%s: no such parent device", bdf);
 * vgpu_error_set_errno() appends ": <strerror(-code)>".
 */
int vgpu_error_set(struct vgpu_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int vgpu_error_set_errno(struct vgpu_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
