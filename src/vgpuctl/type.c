/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* type.c — `vgpuctl types [PARENT]`: the vGPU types each parent offers and how many are left. */
#include <stdio.h>
#include <string.h>

#include "vgpuctl.h"

const struct cli_option types_options[] = {
        { "available", 'a', NULL, "only types that can still be created" },
        {},
};

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
                return cli_error(EXIT_FAILED,
                                 "%s: not a vGPU parent (no mdev_supported_types, no creatable vGPU types)",
                                 want);
        }

        struct out *o = cli_out_table(cli);
        print_types(o, NULL, host, want, available_only);
        out_free(o);
        vgpu_host_free(host);
        return EXIT_OK;
}
