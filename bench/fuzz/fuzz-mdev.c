/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-mdev.c — libFuzzer harness for the parser of mdevctl's definition files,
 * /etc/mdevctl.d/PARENT/UUID (lib/mdevctl-store/store.c): JSON that mdevctl, libvirt or an admin
 * wrote, read back by every apply, export and `list --defined`.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mdevctl-store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* as read_def_job() hands it over: at most 64 KiB, NUL-terminated */
        if (size >= 65536)
                return 0;
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        struct vgpu_mdev_spec spec = {};
        const char *why = NULL;
        int r = store_parse(text, "0000:3b:00.0", "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01", &spec, &why);
        /* either a definition apply can act on, or the reason the file is skipped */
        if (r == 0 && (!spec.type || !spec.parent || !vgpu_uuid_valid(spec.uuid)))
                abort();
        for (size_t i = 0; r == 0 && i < spec.n_attrs; i++)
                if (!spec.attrs[i].key || !spec.attrs[i].value)
                        abort();
        if (r < 0 && r != -ENOMEM && !why)
                abort();
        vgpu_mdev_spec_free(&spec);
        free(text);
        return 0;
}
