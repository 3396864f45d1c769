/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice.c — `vgpuctl slice create|list|show|remove`: software vGPU slices for containers
 * (lib/slice). A container gets one with `podman run --device vgpuctl.io/slice=NAME`.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/slice.h"
#include "vgpuctl.h"

enum { OPT_GPU, OPT_MEMORY, OPT_SHARE, OPT_POLICY, OPT_SCRUB };

const struct cli_option slice_options[] = {
        [OPT_GPU] = { "gpu", 'g', "BDF", "the NVIDIA GPU the slice is cut from (create)" },
        [OPT_MEMORY] = { "memory", 'm', "SIZE",
                         "frame-buffer quota, e.g. 4G or 512M (create; default unlimited)" },
        [OPT_SHARE] = { "share", 's', "PERCENT", "fixed share of GPU time, e.g. 30% (create)" },
        [OPT_POLICY] = { "policy", 0, "POLICY",
                         "best-effort, equal-share (default) or fixed-share (create)" },
        [OPT_SCRUB] = { "scrub", 0, "WHEN",
                        "clear freed memory: on-free (default), on-exit or off (create)" },
        {},
};

int verb_slice(struct cli *cli) {
        const char *sub = cli->argv[0], *name = cli->argc > 1 ? cli->argv[1] : NULL;
        struct vgpu_error err = {};
        bool needs_name = strcmp(sub, "list") != 0;
        if (!strcmp(sub, "list") || !strcmp(sub, "create") || !strcmp(sub, "remove") ||
            !strcmp(sub, "show")) {
                if (needs_name != (name != NULL))
                        return cli_error(EXIT_USAGE, "'slice %s' takes %s", sub,
                                         needs_name ? "a NAME" : "no NAME");
        } else
                return cli_error(EXIT_USAGE, "unknown slice command '%s' (create, list, show, remove)", sub);

        if (!strcmp(sub, "create")) {
                struct vgpu_slice_spec spec;
                uint64_t memory = 0;
                unsigned share = 0;
                if (!cli->opt[OPT_GPU])
                        return cli_error(EXIT_USAGE, "slice create needs --gpu BDF");
                if (cli->opt[OPT_MEMORY] && vgpu_slice_parse_memory(cli->opt[OPT_MEMORY], &memory) < 0)
                        return cli_error(EXIT_USAGE, "--memory '%s': expected a size like 4G or 512M",
                                         cli->opt[OPT_MEMORY]);
                if (cli->opt[OPT_SHARE]) {
                        char *end;
                        unsigned long v = strtoul(cli->opt[OPT_SHARE], &end, 10);
                        if (end == cli->opt[OPT_SHARE] || (*end && strcmp(end, "%") != 0) || v == 0 ||
                            v > 100)
                                return cli_error(EXIT_USAGE,
                                                 "--share '%s': expected a percentage from 1 to 100",
                                                 cli->opt[OPT_SHARE]);
                        share = (unsigned) v;
                }
                if (vgpu_slice_spec_init(&spec, name, cli->opt[OPT_GPU], &err) < 0)
                        return cli_lib_error(&err);
                spec.memory = memory;
                spec.share = share;
                if (cli->opt[OPT_POLICY] &&
                    vgpu_slice_policy_from_string(cli->opt[OPT_POLICY], &spec.policy) < 0)
                        return cli_error(EXIT_FAILED,
                                         "policy '%s': expected best-effort, equal-share or fixed-share",
                                         cli->opt[OPT_POLICY]);
                if (cli->opt[OPT_SCRUB] && vgpu_slice_scrub_from_string(cli->opt[OPT_SCRUB], &spec.scrub) < 0)
                        return cli_error(EXIT_FAILED, "scrub '%s': expected on-free, on-exit or off",
                                         cli->opt[OPT_SCRUB]);
                int r = vgpu_slice_create(&spec, &err);
                if (r < 0)
                        return cli_lib_error(&err);
                struct out *o = cli_out(cli);
                /* the address as slice list shows it */
                print_slice_outcome(o, name, spec.gpu, r > 0);
                out_text(o,
                         r > 0 ? "created slice %s on %s; containers: --device vgpuctl.io/slice=%s\n"
                               : "slice %s on %s exists already: nothing to do (--device "
                                 "vgpuctl.io/slice=%s)\n",
                         name, cli->opt[OPT_GPU], name);
                out_free(o);
                return EXIT_OK;
        }
        if (!strcmp(sub, "remove")) {
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
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        /* list checks the regions: a corrupt one is an error (after what can be listed), since
         * its slices are missing from the list, from /metrics and from the CDI spec */
        int r = name ? vgpu_slice_list(&s, &n, &err) : vgpu_slice_check(&s, &n, &err);
        if (r < 0 && r != -EBADMSG)
                return cli_lib_error(&err);
        size_t first = 0;
        if (name) {
                for (first = 0; first < n && strcmp(s[first].spec.name, name) != 0; first++)
                        ;
                if (first == n) {
                        free(s);
                        return cli_error(EXIT_FAILED, "no slice named %s", name);
                }
        }
        struct out *o = cli_out(cli);
        if (name)
                print_slice(o, &s[first]); /* one slice: an object, as `show BDF` prints one GPU */
        else
                print_slices(o, NULL, s, n);
        out_free(o);
        free(s);
        return r < 0 ? cli_lib_error(&err) : EXIT_OK;
}
