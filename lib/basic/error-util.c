/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* error-util.c — building the one-line messages carried by struct vgpu_error. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error-util.h"

_public_ void vgpu_error_clear(struct vgpu_error *err) {
        if (!err)
                return;
        err->code = 0;
        err->message[0] = '\0';
}

static int error_setv(struct vgpu_error *err, int code, bool append_errno, const char *fmt, va_list ap) {
        if (!err)
                return code;
        int n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
        if (append_errno && n >= 0 && (size_t) n < sizeof(err->message))
                snprintf(err->message + n, sizeof(err->message) - n, ": %s",
                         strerror(code < 0 ? -code : code));
        err->code = code;
        return code;
}

_public_ int vgpu_error_set(struct vgpu_error *err, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = error_setv(err, code, false, fmt, ap);
        va_end(ap);
        return r;
}

_public_ int vgpu_error_set_errno(struct vgpu_error *err, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = error_setv(err, code, true, fmt, ap);
        va_end(ap);
        return r;
}
