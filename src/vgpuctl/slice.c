/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice.c — `vgpuctl slice create|list|show|remove`: software vGPU slices for containers
 * (lib/slice). A container gets one with `podman run --device vgpuctl.io/slice=NAME`.
 * `slice` is a verb of verbs: each command has its own arguments and options in slice_verbs[],
 * from which main.c parses, --help, the man page and the completions are made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/slice.h"
#include "vgpuctl.h"

static const struct cli_option create_slice_options[] = {
        { "gpu", 'g', "BDF", "the NVIDIA GPU the slice is cut from (required)" },
        { "memory", 'm', "SIZE", "frame-buffer quota, e.g. 4G or 512M (default unlimited)" },
        { "share", 's', "PERCENT", "fixed share of GPU time, e.g. 30%" },
        { "policy", 0, "POLICY", "best-effort, equal-share (default) or fixed-share (default with --share)" },
        { "scrub", 0, "WHEN", "clear freed memory: on-free (default), on-exit or off" },
        {},
};

static int slice_create(struct cli *cli) {
        const char *name = cli->argv[0], *gpu = cli_opt(cli, "gpu"), *memory = cli_opt(cli, "memory"),
                   *share = cli_opt(cli, "share"), *policy = cli_opt(cli, "policy"),
                   *scrub = cli_opt(cli, "scrub");
        struct vgpu_error err = {};
        struct vgpu_slice_spec spec;
        uint64_t bytes = 0;
        unsigned percent = 0;
        if (!gpu)
                return cli_error(EXIT_USAGE, "slice create needs --gpu BDF");
        if (memory && vgpu_slice_parse_memory(memory, &bytes) < 0)
                return cli_error(EXIT_USAGE, "--memory '%s': expected a size like 4G or 512M", memory);
        if (share) {
                char *end;
                unsigned long v = strtoul(share, &end, 10);
                if (end == share || (*end && strcmp(end, "%") != 0) || v == 0 || v > 100)
                        return cli_error(EXIT_USAGE, "--share '%s': expected a percentage from 1 to 100",
                                         share);
                percent = (unsigned) v;
        }
        if (vgpu_slice_spec_init(&spec, name, gpu, &err) < 0)
                return cli_lib_error(&err);
        spec.memory = bytes;
        spec.share = percent;
        if (policy && vgpu_slice_policy_from_string(policy, &spec.policy) < 0)
                return cli_error(EXIT_FAILED, "policy '%s': expected best-effort, equal-share or fixed-share",
                                 policy);
        if (scrub && vgpu_slice_scrub_from_string(scrub, &spec.scrub) < 0)
                return cli_error(EXIT_FAILED, "scrub '%s': expected on-free, on-exit or off", scrub);
        int r = vgpu_slice_create(&spec, &err);
        if (r < 0)
                return cli_lib_error(&err);
        struct out *o = cli_out(cli);
        /* the address as slice list shows it */
        print_slice_outcome(o, name, spec.gpu, r > 0);
        out_text(o,
                 r > 0 ? "created slice %s on %s; containers: --device vgpuctl.io/slice=%s\n"
                       : "slice %s on %s exists already: nothing to do (--device vgpuctl.io/slice=%s)\n",
                 name, gpu, name);
        out_free(o);
        return EXIT_OK;
}

static int slice_remove(struct cli *cli) {
        const char *name = cli->argv[0];
        struct vgpu_error err = {};
        /* the GPU it was on, for the JSON answer; an unreadable list only leaves it null */
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        char gpu[VGPU_SLICE_GPU_MAX] = "";
        struct vgpu_error ignored = {};
        if (cli->json && vgpu_slice_list(&s, &n, &ignored) >= 0)
                for (size_t i = 0; i < n; i++)
                        if (!strcmp(s[i].spec.name, name))
                                snprintf(gpu, sizeof(gpu), "%s", s[i].spec.gpu);
        free(s);
        if (vgpu_slice_destroy(name, &err) < 0)
                return cli_lib_error(&err);
        struct out *o = cli_out(cli);
        print_slice_outcome(o, name, gpu[0] ? gpu : NULL, true);
        out_text(o, "removed slice %s\n", name);
        out_free(o);
        return EXIT_OK;
}

/* list checks the regions: a corrupt one is an error (after what can be listed), since its
 * slices are missing from the list, from /metrics and from the CDI spec */
static int slice_list(struct cli *cli) {
        struct vgpu_error err = {};
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        int r = vgpu_slice_check(&s, &n, &err);
        if (r < 0 && r != -EBADMSG)
                return cli_lib_error(&err);
        struct out *o = cli_out(cli);
        print_slices(o, NULL, s, n);
        out_free(o);
        free(s);
        return r < 0 ? cli_lib_error(&err) : EXIT_OK;
}

static int slice_show(struct cli *cli) {
        const char *name = cli->argv[0];
        struct vgpu_error err = {};
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        if (vgpu_slice_list(&s, &n, &err) < 0)
                return cli_lib_error(&err);
        size_t i = 0;
        while (i < n && strcmp(s[i].spec.name, name) != 0)
                i++;
        if (i == n) {
                free(s);
                return cli_error(EXIT_FAILED, "no slice named %s", name);
        }
        struct out *o = cli_out(cli);
        print_slice(o, &s[i]); /* one slice: an object, as `show BDF` prints one GPU */
        out_free(o);
        free(s);
        return EXIT_OK;
}

const struct verb slice_verbs[] = {
        { "create", "NAME", "create a slice on a GPU (nothing to do when it exists as asked)", 1, 1,
          slice_create, create_slice_options },
        { "list", "", "every slice with its usage; a damaged region is an error", 0, 0, slice_list, NULL },
        { "show", "NAME", "one slice with its usage", 1, 1, slice_show, NULL },
        { "remove", "NAME", "remove a slice no process uses", 1, 1, slice_remove, NULL },
        {},
};
