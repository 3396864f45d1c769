/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slices.c — the daemon and the software slices (vgpu/slice.h): the recorded slices restored at
 * start (their regions live in /run), their usage read at every poll for /metrics, and
 * GET /v1/slices, {"slices": [...]}, the objects of `vgpuctl slice list --json`.
 *
 * Series (labels slice, gpu = the GPU's index as in the GPU series, bdf, policy):
 *   vgpu_slice_memory_quota_bytes (only slices with a quota), vgpu_slice_memory_used_bytes,
 *   vgpu_slice_memory_peak_bytes, vgpu_slice_oom_total, vgpu_slice_gpu_time_seconds_total,
 *   vgpu_slice_processes, vgpu_slice_share_ratio (only fixed-share slices: share / 100).
 * Slice names are [A-Za-z0-9_.-] and the other labels are BDFs and policy names, so no label
 * value here needs escaping.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "print.h"
#include "vgpud.h"

void slices_collect(struct vgpud *d) {
        struct vgpu_error err = {};
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        if (vgpu_slice_list(&s, &n, &err) < 0) {
                log_debug("slices: %s", err.message);
                return; /* the last numbers stay: better stale than gone for one poll */
        }
        free(d->slices);
        d->slices = s;
        d->n_slices = n;
}

void slices_free(struct vgpud *d) {
        free(d->slices);
        d->slices = NULL;
        d->n_slices = 0;
}

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void labels(FILE *f, const struct vgpud *d, const struct vgpu_slice_status *s) {
        char gpu[24] = "";
        for (size_t i = 0; i < d->telemetry.n_gpus; i++)
                if (streq(d->telemetry.gpus[i].bdf, s->spec.gpu))
                        snprintf(gpu, sizeof(gpu), "%zu", i);
        fprintf(f, "{slice=\"%s\",gpu=\"%s\",bdf=\"%s\",policy=\"%s\"}", s->spec.name, gpu, s->spec.gpu,
                vgpu_slice_policy_to_string(s->spec.policy));
}

#define SLICE_SERIES(f, d, name, type, help, has, fmt, value)                 \
        do {                                                                  \
                header(f, name, type, help);                                  \
                for (size_t _i = 0; _i < (d)->n_slices; _i++) {               \
                        const struct vgpu_slice_status *s = &(d)->slices[_i]; \
                        if (!(has))                                           \
                                continue;                                     \
                        fputs(name, f);                                       \
                        labels(f, d, s);                                      \
                        fprintf(f, " " fmt "\n", value);                      \
                }                                                             \
        } while (0)

void slices_metrics(FILE *f, const struct vgpud *d) {
        SLICE_SERIES(f, d, "vgpu_slice_memory_quota_bytes", "gauge",
                     "Device memory quota of a software slice (absent: unlimited).", s->spec.memory > 0,
                     "%" PRIu64, s->spec.memory);
        SLICE_SERIES(f, d, "vgpu_slice_memory_used_bytes", "gauge",
                     "Device memory charged to a slice's processes now.", true, "%" PRIu64, s->usage.used);
        SLICE_SERIES(f, d, "vgpu_slice_memory_peak_bytes", "gauge",
                     "Most device memory a slice has had charged at once.", true, "%" PRIu64, s->usage.peak);
        SLICE_SERIES(f, d, "vgpu_slice_oom_total", "counter",
                     "Allocations refused because they would exceed the slice's quota.", true, "%" PRIu64,
                     s->usage.oom_count);
        SLICE_SERIES(f, d, "vgpu_slice_gpu_time_seconds_total", "counter",
                     "GPU time a slice's work used, measured at turn ends.", true, "%.9f",
                     (double) s->usage.gpu_time_ns / 1e9);
        SLICE_SERIES(f, d, "vgpu_slice_processes", "gauge", "Processes attached to a slice.", true, "%u",
                     s->usage.processes);
        SLICE_SERIES(f, d, "vgpu_slice_share_ratio", "gauge",
                     "Fixed share of GPU time of a fixed-share slice (0.3 = 30 %).", s->spec.share > 0,
                     "%.2f", s->spec.share / 100.0);
}

int handle_slices(const struct api_request *req, const char *arg, struct api_reply *reply) {
        struct vgpu_error err = {};
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        struct json_body b;
        (void) req;
        (void) arg;
        /* read now, as `vgpuctl slice list` does: a slice made a moment ago is listed */
        if (vgpu_slice_list(&s, &n, &err) < 0)
                return reply_lib_error(reply, &err);
        if (json_begin(&b) < 0) {
                free(s);
                return reply_error(reply, 500, "out of memory");
        }
        out_open_object(b.o, NULL);
        print_slices(b.o, "slices", s, n);
        out_close_object(b.o);
        free(s);
        return json_end(&b, reply, 200);
}
