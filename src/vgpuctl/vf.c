/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vf.c — `vgpuctl vfs BDF N [--vfio]`: SR-IOV virtual functions of a physical function. */
#include <errno.h>
#include <stdlib.h>

#include "vgpu/lifecycle.h"
#include "vgpuctl.h"

const struct cli_option vfs_options[] = {
        { "vfio", 0, NULL, "bind the VFs to vfio-pci (for VMs)" },
        {},
};

int verb_vfs(struct cli *cli) {
        char *end;
        unsigned long n = strtoul(cli->argv[1], &end, 10);
        if (*end || end == cli->argv[1] || n > 4096)
                return cli_error(EXIT_USAGE, "'%s' is not a number of VFs", cli->argv[1]);
        struct vgpu_error err = {};
        int r = vgpu_sriov_set_vfs(cli->argv[0], (unsigned) n, cli->opt[0] ? VGPU_VFS_BIND_VFIO : 0, &err);
        if (r < 0)
                return cli_lib_error(&err);
        struct out *o = cli_out(cli);
        out_open_object(o, NULL);
        out_string(o, OUT_JSON, "bdf", NULL, cli->argv[0]);
        out_u64(o, OUT_JSON, "num_vfs", NULL, n);
        out_bool(o, OUT_JSON, "changed", NULL, r > 0);
        out_close_object(o);
        out_text(o, r > 0 ? "%s: %lu VFs enabled\n" : "%s: %lu VFs enabled already: nothing to do\n",
                 cli->argv[0], n);
        out_free(o);
        return EXIT_OK;
}
