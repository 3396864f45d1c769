/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * print-slice.c — software slices as a table or JSON: `vgpuctl slice list/show/create/remove`,
 * `list`'s "slices" and /v1/slices. A slice's quota and share have the names they have in its
 * record (/var/lib/vgpuctl/slices/NAME.json): memory_bytes and share_percent, null for none.
 */
#include <stdio.h>

#include "print.h"
#include "vgpu/slice.h"

static void print_slice_header(struct out *o) {
        out_text(o, "%-16s %-14s %-12s %6s %10s %10s %5s %s\n", "SLICE", "GPU", "POLICY", "SHARE", "QUOTA",
                 "USED", "PROCS", "SCRUB");
}

static void print_slice_row(struct out *o, const struct vgpu_slice_status *st) {
        const struct vgpu_slice_spec *s = &st->spec;
        const struct vgpu_slice_usage *u = &st->usage;
        char a[16], b[16];
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "name", "%-16s ", s->name);
        out_string(o, OUT_ANY, "gpu", "%-14s ", s->gpu);
        out_string(o, OUT_ANY, "policy", "%-12s ", vgpu_slice_policy_to_string(s->policy));
        out_i64(o, OUT_ANY, "share_percent", "%6s ", s->share, s->share > 0);
        out_i64(o, OUT_JSON, "memory_bytes", NULL, (int64_t) s->memory, s->memory > 0);
        out_text(o, "%10s ", s->memory ? format_bytes(a, sizeof(a), (int64_t) s->memory) : "unlimited");
        out_u64(o, OUT_JSON, "used_bytes", NULL, u->used);
        out_text(o, "%10s ", format_bytes(b, sizeof(b), (int64_t) u->used));
        out_u64(o, OUT_JSON, "peak_bytes", NULL, u->peak);
        out_u64(o, OUT_JSON, "oom_count", NULL, u->oom_count);
        out_u64(o, OUT_JSON, "gpu_time_ns", NULL, u->gpu_time_ns);
        out_u64(o, OUT_ANY, "processes", "%5s ", u->processes);
        out_string(o, OUT_ANY, "scrub", "%s\n", vgpu_slice_scrub_to_string(s->scrub));
        out_close_object(o);
}

void print_slices(struct out *o, const char *key, const struct vgpu_slice_status *s, size_t n) {
        print_slice_header(o);
        out_open_array(o, key);
        for (size_t i = 0; i < n; i++)
                print_slice_row(o, &s[i]);
        out_close_array(o);
        if (n == 0)
                out_text(o, "(no slices)\n");
}

void print_slice(struct out *o, const struct vgpu_slice_status *s) {
        print_slice_header(o);
        print_slice_row(o, s);
}

void print_slice_outcome(struct out *o, const char *name, const char *gpu, bool changed) {
        out_open_object(o, NULL);
        out_string(o, OUT_JSON, "name", NULL, name);
        out_string(o, OUT_JSON, "gpu", NULL, gpu);
        out_bool(o, OUT_JSON, "changed", NULL, changed);
        out_close_object(o);
}
