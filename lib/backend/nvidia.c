/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvidia.c — NVIDIA vGPU: the host driver's mdev type descriptions, and vendor-VFIO types
 * (vGPU 17+, Ada/Hopper/Blackwell SR-IOV: no mdev; each VF offers the types listed in
 * nvidia/creatable_vgpu_types and takes one by writing its id to nvidia/current_vgpu_type).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "basic/macro.h"
#include "basic/sysfs.h"

/* Value of "key=" in a comma-separated description, or NULL. */
static const char *find_key(const char *desc, const char *key) {
        size_t n = strlen(key);
        for (const char *p = desc; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
                while (*p == ' ')
                        p++;
                if (strncmp(p, key, n) == 0 && p[n] == '=')
                        return p + n + 1;
        }
        return NULL;
}

/* "num_heads=4, frl_config=60, framebuffer=2048M, max_resolution=5120x2880, max_instance=8" */
static void nvidia_describe_type(struct vgpu_type *t) {
        if (!t->description)
                return;
        const char *v = find_key(t->description, "framebuffer");
        if (v)
                t->framebuffer_bytes = parse_size_with_unit(v);
        v = find_key(t->description, "max_instance");
        if (v && isdigit((unsigned char) *v))
                t->max_instances = strtoll(v, NULL, 10);
}

/*
 * creatable_vgpu_types, as the driver prints it:
 *     ID    : vGPU Name
 *     1155  : NVIDIA L40S-1Q
 * A VF that already has a type lists none.
 */
static int nvidia_list_vfio_types(int devfd, struct vgpu_parent *p) {
        _cleanup_free_ char *text = NULL;
        int r = sysfs_read_alloc_at(devfd, "nvidia/creatable_vgpu_types", &text);
        if (r < 0)
                return r == -ENOENT ? 0 : r;

        size_t allocated = p->n_types, added = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *colon = strchr(line, ':');
                if (!colon || !isdigit((unsigned char) line[0]))
                        continue; /* the header line, or noise */
                *colon = '\0';
                char *name = colon + 1;
                while (*name == ' ')
                        name++;
                strip_trailing_space(line, strlen(line));
                strip_trailing_space(name, strlen(name));

                if (!GREEDY_REALLOC(p->types, allocated, p->n_types + 1))
                        return -ENOMEM;
                struct vgpu_type *t = &p->types[p->n_types];
                *t = (struct vgpu_type){
                        .parent = p->name,
                        .id = strdup(line),
                        .name = strdup(name),
                        .device_api = strdup("vfio-pci"),
                        /* a VF hosts exactly one vGPU: each listed type can be created once */
                        .available_instances = 1,
                        .framebuffer_bytes = -1,
                        .max_instances = -1,
                        .kind = VGPU_TYPE_NVIDIA_VFIO,
                };
                p->n_types++;
                if (!t->id || !t->name || !t->device_api)
                        return -ENOMEM;
                added++;
        }
        return (int) added;
}

static const char *const nvidia_drivers[] = { "nvidia", NULL };

const struct vgpu_backend backend_nvidia = {
        .name = "nvidia",
        .drivers = nvidia_drivers,
        .describe_type = nvidia_describe_type,
        .list_vfio_types = nvidia_list_vfio_types,
};
