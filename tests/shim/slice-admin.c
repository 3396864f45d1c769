/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-admin.c — a minimal front end to lib/slice for bench/gpu and manual runs until
 * `vgpuctl slice` exists:
 *   slice-admin create PATH [QUANTUM_MS [BDF]]
 *   slice-admin add PATH NAME MEMORY_BYTES POLICY [WEIGHT [SCRUB [OVERHEAD [GRANULARITY]]]]
 *   slice-admin show PATH          one JSON object per slice and line
 * POLICY is best-effort, equal-share or fixed-share; SCRUB on-free, on-exit or off; OVERHEAD
 * bytes charged per process (its context), GRANULARITY what charges round up to.
 */
#include <stdio.h>
#include <stdlib.h>

#include "slice/slice.h"

static int usage(void) {
        fprintf(stderr, "usage: slice-admin create PATH [QUANTUM_MS [BDF]]\n"
                        "       slice-admin add PATH NAME MEMORY_BYTES POLICY [WEIGHT [SCRUB [OVERHEAD [GRANULARITY]]]]\n"
                        "       slice-admin show PATH\n");
        return 2;
}

int main(int argc, char **argv) {
        struct vgpu_error err = {};
        _cleanup_slice_region_ struct vgpu_slice_region *r = NULL;
        if (argc < 3)
                return usage();
        if (streq(argv[1], "create")) {
                struct vgpu_slice_gpu_params gpu = {
                        .quantum_ns = argc > 3 ? strtoull(argv[3], NULL, 0) * 1000000 : 0,
                        .bdf = argc > 4 ? argv[4] : NULL,       /* the slice's GPU (else: the first used) */
                };
                /* Containers (other users) must be able to map it. */
                if (vgpu_slice_region_create(argv[2], &gpu, 0666, &r, &err) < 0)
                        goto fail;
                return 0;
        }
        if (vgpu_slice_region_open(argv[2], &r, &err) < 0)
                goto fail;
        if (streq(argv[1], "add") && argc >= 6) {
                int policy = vgpu_slice_policy_from_string(argv[5]);
                int scrub = argc > 7 ? vgpu_slice_scrub_from_string(argv[7]) : VGPU_SLICE_SCRUB_ON_FREE;
                if (policy < 0 || scrub < 0)
                        return usage();
                struct vgpu_slice_params p = {
                        .name = argv[3],
                        .quota = strtoull(argv[4], NULL, 0),
                        .policy = policy,
                        .weight = argc > 6 ? (unsigned) atoi(argv[6]) : 0,
                        .scrub = scrub,
                        .proc_overhead = argc > 8 ? strtoull(argv[8], NULL, 0) : 0,
                        .granularity = argc > 9 ? strtoull(argv[9], NULL, 0) : 0,
                };
                if (vgpu_slice_add(r, &p, NULL, &err) < 0)
                        goto fail;
                return 0;
        }
        if (streq(argv[1], "show")) {
                for (unsigned i = 0; i < VGPU_SLICE_MAX; i++) {
                        struct vgpu_slice_info s;
                        if (vgpu_slice_get_info(r, i, &s) < 0)
                                continue;
                        printf("{\"name\": \"%s\", \"policy\": \"%s\", \"weight\": %u, \"scrub\": \"%s\", "
                               "\"quota\": %llu, \"used\": %llu, \"peak\": %llu, \"oom_count\": %llu, "
                               "\"gpu_ns\": %llu, \"turns\": %llu, \"processes\": %u}\n",
                               s.name, vgpu_slice_policy_to_string(s.policy), s.weight, vgpu_slice_scrub_to_string(s.scrub),
                               (unsigned long long) s.quota, (unsigned long long) s.used, (unsigned long long) s.peak,
                               (unsigned long long) s.oom_count, (unsigned long long) s.gpu_ns,
                               (unsigned long long) s.turns, s.processes);
                }
                return 0;
        }
        return usage();
fail:
        fprintf(stderr, "slice-admin: %s\n", err.message);
        return 1;
}
