/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vf.c — `vgpuctl vfs BDF --count N [--vfio]`: SR-IOV virtual functions of a physical function. */
#include <errno.h>
#include <stdlib.h>

#include "vgpu/lifecycle.h"
#include "vgpuctl.h"

enum { OPT_VFIO, OPT_COUNT };

const struct cli_option vfs_options[] = {
        [OPT_VFIO] = { "vfio", 0, NULL, "bind the VFs to vfio-pci (for VMs)" },
        [OPT_COUNT] = { "count", 'c', "N", "how many VFs to enable (0 disables)" },
        {},
};

int verb_vfs(struct cli *cli) {
        /* the count is a setting of the PF, so it is named; `vfs BDF N`, the first form, still works */
        const char *count = cli->opt[OPT_COUNT] ? cli->opt[OPT_COUNT] : cli->argc > 1 ? cli->argv[1] : NULL;
        if (!count)
                return cli_error(EXIT_USAGE, "vfs: how many VFs? (vgpuctl vfs BDF --count N)");
        if (cli->opt[OPT_COUNT] && cli->argc > 1)
                return cli_error(EXIT_USAGE, "vfs: the count is given twice ('%s' and --count %s)",
                                 cli->argv[1], cli->opt[OPT_COUNT]);
        char *end;
        unsigned long n = strtoul(count, &end, 10);
        if (*end || end == count || n > 4096)
                return cli_error(EXIT_USAGE, "'%s' is not a number of VFs", count);
        struct vgpu_error err = {};
        int r = vgpu_sriov_set_vfs(cli->argv[0], (unsigned) n, cli->opt[OPT_VFIO] ? VGPU_VFS_BIND_VFIO : 0,
                                   &err);
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
