/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* root-api.c — the exported face of root.c and fileio.c's mkdir (vgpu/root.h), for programs that
 * make host paths of their own; the library itself calls the internal names. */
#include "fileio.h"
#include "macro.h"
#include "root.h"
#include "vgpu/root.h"

_public_ const char *vgpu_root_prefix(void) {
        return root_prefix();
}

_public_ int vgpu_root_path(char *buf, size_t size, const char *path) {
        return root_path(buf, size, path);
}

_public_ int vgpu_root_read(const char *path, char *buf, size_t size) {
        return root_read(path, buf, size);
}

_public_ int vgpu_root_mkdir_parents(const char *path, mode_t mode) {
        return mkdir_parents_root(path, mode);
}
