/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* type.c — `vgpuctl types [PARENT]`: the vGPU types each parent offers and how many are left. */
#include <stdio.h>
#include <string.h>

#include "vgpuctl.h"

const struct cli_option types_options[] = {
        { "available", 'a', NULL, "only types that can still be created" },
        {},
};

static void print_type(struct out *o, const struct vgpu_type *t) {
        char fb[16];
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "parent", "%-14s ", t->parent);
        out_string(o, OUT_ANY, "type", "%-16s ", t->id);
        out_string(o, OUT_ANY, "name", "%-20s ", t->name);
        out_string(o, OUT_ANY, "device_api", "%-10s ", t->device_api);
        out_i64(o, OUT_ANY, "available_instances", "%5s ", t->available_instances, t->available_instances >= 0);
        out_i64(o, OUT_ANY, "max_instances", "%5s ", t->max_instances, t->max_instances >= 0);
        out_i64(o, OUT_JSON, "framebuffer_bytes", NULL, t->framebuffer_bytes, t->framebuffer_bytes >= 0);
        out_text(o, "%6s", format_bytes(fb, sizeof(fb), t->framebuffer_bytes));
        out_string(o, OUT_JSON, "kind", NULL, t->kind == VGPU_TYPE_MDEV ? "mdev" : "nvidia-vfio");
        out_string(o, OUT_JSON, "description", NULL, t->description);
        out_text(o, "\n");
        out_close_object(o);
}

int verb_types(struct cli *cli) {
        const char *want = cli->argc > 0 ? cli->argv[0] : NULL;
        bool available_only = cli->opt[0] != NULL;
        char bdf[VGPU_BDF_MAX];

        /* Accept "41:00.0" for "0000:41:00.0"; virtual parents ("mbochs") are taken as named. */
        if (want && vgpu_bdf_normalize(want, bdf) == 0)
                want = bdf;

        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_TYPES, &host, &err) < 0)
                return cli_lib_error(&err);
        if (want && !vgpu_host_find_parent(host, want)) {
                vgpu_host_free(host);
                return cli_error(EXIT_FAILED, "%s: not a vGPU parent (no mdev_supported_types, no creatable vGPU types)", want);
        }

        struct out *o = cli_out(cli);
        print_types(o, host, want, available_only);
        out_free(o);
        vgpu_host_free(host);
        return EXIT_OK;
}

void print_types(struct out *o, const struct vgpu_host *host, const char *want, bool available_only) {
        out_text(o, "%-14s %-16s %-20s %-10s %5s %5s %6s\n", "PARENT", "TYPE", "NAME", "API", "AVAIL", "MAX", "FB");
        out_open_array(o, NULL);
        size_t shown = 0;
        for (size_t i = 0; i < host->n_parents; i++) {
                const struct vgpu_parent *p = &host->parents[i];
                if (want && strcmp(p->name, want) != 0)
                        continue;
                for (size_t j = 0; j < p->n_types; j++) {
                        if (available_only && p->types[j].available_instances == 0)
                                continue;
                        print_type(o, &p->types[j]);
                        shown++;
                }
        }
        out_close_array(o);
        if (shown == 0)
                out_text(o, "(no vGPU types: see 'vgpuctl doctor' for what is missing)\n");
}
