/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-admin.c — a minimal front end to lib/slice for bench/gpu and manual runs until
 * `vgpuctl slice` exists:
 *   slice-admin create PATH [QUANTUM_MS [BDF]]      the GPU's scheduler file
 *   slice-admin add PATH NAME MEMORY_BYTES POLICY [WEIGHT [SCRUB [OVERHEAD [GRANULARITY]]]]
 *   slice-admin show PATH          one JSON object per slice and line
 * A slice's own region is PATH.NAME.slice (VGPU_SLICE_SHM), the scheduler PATH (VGPU_SLICE_SCHED).
 * POLICY is best-effort, equal-share or fixed-share; SCRUB on-free, on-exit or off; OVERHEAD
 * bytes charged per process (its context), GRANULARITY what charges round up to.
 */
#include <stdio.h>
#include <stdlib.h>

#include "slice/slice.h"

static int usage(void) {
        fprintf(stderr, "usage: slice-admin create PATH [QUANTUM_MS [BDF]]\n"
                        "       slice-admin add PATH NAME MEMORY_BYTES POLICY [WEIGHT [SCRUB [OVERHEAD "
                        "[GRANULARITY]]]]\n"
                        "       slice-admin show PATH\n");
        return 2;
}

int main(int argc, char **argv) {
        struct vgpu_error err = {};
        _cleanup_sched_file_ struct slice_sched_file *f = NULL;
        if (argc < 3)
                return usage();
        if (streq(argv[1], "create")) {
                struct slice_gpu_params gpu = {
                        .quantum_ns = argc > 3 ? strtoull(argv[3], NULL, 0) * 1000000 : 0,
                        .bdf = argc > 4 ? argv[4] : NULL, /* the slice's GPU (else: the first used) */
                };
                /* root's, like vgpuctl's (lib/slice/manage.h): tenants run as root */
                if (slice_sched_file_create(argv[2], &gpu, 0600, NULL, &err) < 0)
                        goto fail;
                return 0;
        }
        struct slice_shm state, *shm;
        if (slice_sched_file_open(argv[2], &f, &err) < 0 || slice_sched_file_read(f, &state, &err) < 0)
                goto fail;
        char own[4096];
        if (streq(argv[1], "add") && argc >= 6) {
                int policy = slice_policy_from_string(argv[5]);
                int scrub = argc > 7 ? slice_scrub_from_string(argv[7]) : SLICE_SCRUB_ON_FREE;
                if (policy < 0 || scrub < 0)
                        return usage();
                struct slice_params p = {
                        .name = argv[3],
                        .quota = strtoull(argv[4], NULL, 0),
                        .policy = policy,
                        .weight = argc > 6 ? (unsigned) atoi(argv[6]) : 0,
                        .scrub = scrub,
                        .proc_overhead = argc > 8 ? strtoull(argv[8], NULL, 0) : 0,
                        .granularity = argc > 9 ? strtoull(argv[9], NULL, 0) : 0,
                };
                unsigned index;
                if (slice_sched_file_begin(f, &shm) < 0) {
                        fprintf(stderr, "slice-admin: %s: scheduler busy or corrupt\n", argv[2]);
                        return 1;
                }
                int r = slice_sched_add(shm, &p, &index, &err);
                slice_sched_file_end(f, r >= 0);
                snprintf(own, sizeof(own), "%s.%s.slice", argv[2], argv[3]);
                if (r < 0 || slice_region_create(own, state.gpu_bdf, index, &p, 0600, &err) < 0)
                        goto fail;
                return 0;
        }
        if (streq(argv[1], "show")) {
                for (unsigned i = 0; i < SLICE_MAX; i++) {
                        const struct slice_sched_slot *slot = &state.slices[i];
                        struct slice_file file;
                        struct slice_info s;
                        if (atomic_load(&slot->state) != SLICE_STATE_ACTIVE)
                                continue;
                        snprintf(own, sizeof(own), "%s.%.63s.slice", argv[2], slot->name);
                        if (slice_region_read(own, &file, &err) < 0)
                                goto fail;
                        slice_file_info(&file, &state, &s);
                        printf("{\"name\": \"%s\", \"policy\": \"%s\", \"weight\": %u, \"scrub\": \"%s\", "
                               "\"quota\": %llu, \"used\": %llu, \"peak\": %llu, \"oom_count\": %llu, "
                               "\"gpu_ns\": %llu, \"turns\": %llu, \"processes\": %u}\n",
                               s.name, slice_policy_to_string(s.policy), s.weight,
                               slice_scrub_to_string(s.scrub), (unsigned long long) s.quota,
                               (unsigned long long) s.used, (unsigned long long) s.peak,
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
