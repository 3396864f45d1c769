/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* print-slice.c — software slices as a table or JSON: `vgpuctl slice list/show` and `list`'s "slices". */
#include <stdio.h>

#include "print.h"
#include "vgpu/slice.h"

void print_slices(struct out *o, const char *key, const struct vgpu_slice_status *s, size_t n) {
        char a[16], b[16];
        out_text(o, "%-16s %-14s %-12s %6s %10s %10s %5s %s\n", "SLICE", "GPU", "POLICY", "SHARE", "QUOTA", "USED", "PROCS", "SCRUB");
        out_open_array(o, key);
        for (size_t i = 0; i < n; i++) {
                out_open_object(o, NULL);
                out_string(o, OUT_ANY, "name", "%-16s ", s[i].name);
                out_string(o, OUT_ANY, "gpu", "%-14s ", s[i].gpu);
                out_string(o, OUT_ANY, "policy", "%-12s ", s[i].policy);
                out_i64(o, OUT_ANY, "share_percent", "%6s ", s[i].share, s[i].share > 0);
                out_i64(o, OUT_JSON, "memory_bytes", NULL, (int64_t) s[i].memory, s[i].memory > 0);
                out_text(o, "%10s ", s[i].memory ? format_bytes(a, sizeof(a), (int64_t) s[i].memory) : "unlimited");
                out_u64(o, OUT_JSON, "used_bytes", NULL, s[i].used);
                out_text(o, "%10s ", format_bytes(b, sizeof(b), (int64_t) s[i].used));
                out_u64(o, OUT_JSON, "peak_bytes", NULL, s[i].peak);
                out_u64(o, OUT_JSON, "oom_count", NULL, s[i].oom_count);
                out_u64(o, OUT_JSON, "gpu_time_ns", NULL, s[i].gpu_time_ns);
                out_u64(o, OUT_ANY, "processes", "%5s ", s[i].processes);
                out_string(o, OUT_ANY, "scrub", "%s\n", s[i].scrub);
                out_close_object(o);
        }
        out_close_array(o);
        if (n == 0)
                out_text(o, "(no slices)\n");
}

