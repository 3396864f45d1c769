/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * print-doctor.c — doctor results as `vgpuctl doctor` prints them (a row with evidence and
 * remedy under each warning and failure, or a JSON array); the daemon's /v1/health reuses it.
 */
#include <stdio.h>
#include <string.h>

#include "print.h"

/* Print text indented under a result: "      label: line1\n              line2...". */
static void print_block(struct out *o, const char *label, const char *text) {
        if (!text || !*text)
                return;
        const char *line = text;
        bool first = true;
        while (line) {
                const char *nl = strchr(line, '\n');
                int len = nl ? (int) (nl - line) : (int) strlen(line);
                out_text(o, "      %-9s %.*s\n", first ? label : "", len, line);
                first = false;
                line = nl ? nl + 1 : NULL;
        }
}

/* One result, as a table row with details, or as a JSON object: both from here. */
static void print_result(struct out *o, const struct vgpu_check_result *r) {
        static const char *const upper[] = {
                [VGPU_CHECK_PASS] = "PASS",
                [VGPU_CHECK_WARN] = "WARN",
                [VGPU_CHECK_FAIL] = "FAIL",
                [VGPU_CHECK_SKIP] = "SKIP",
        };
        out_open_object(o, NULL);
        out_text(o, "%-5s ", upper[r->status]);
        out_string(o, OUT_ANY, "id", "%-19s ", r->id);
        out_string(o, OUT_JSON, "status", NULL, vgpu_check_status_to_string(r->status));
        out_string(o, OUT_JSON, "subject", NULL, r->subject);
        out_text(o, "%-13s ", r->subject ? r->subject : "");
        out_string(o, OUT_ANY, "summary", "%s\n", r->summary);
        out_string(o, OUT_JSON, "evidence", NULL, r->evidence);
        out_string(o, OUT_JSON, "remedy", NULL, r->remedy);
        if (r->status == VGPU_CHECK_WARN || r->status == VGPU_CHECK_FAIL) {
                print_block(o, "evidence:", r->evidence);
                print_block(o, "remedy:", r->remedy);
        }
        out_close_object(o);
}

static bool selected(const char *id, const char *const *sel, size_t n_sel) {
        if (n_sel == 0)
                return true;
        for (size_t i = 0; i < n_sel; i++)
                if (strcmp(sel[i], id) == 0)
                        return true;
        return false;
}

/* Print the results whose id is selected (all when n_sel is 0); returns the number failed. */
size_t print_doctor_report(struct out *o, const char *key, const struct vgpu_doctor_report *report,
                           const char *const *sel, size_t n_sel) {
        size_t count[4] = {}, shown = 0;
        out_open_array(o, key);
        for (size_t i = 0; i < report->n_results; i++) {
                const struct vgpu_check_result *r = &report->results[i];
                if (!selected(r->id, sel, n_sel))
                        continue;
                print_result(o, r);
                count[r->status]++;
                shown++;
        }
        out_close_array(o);
        out_text(o, "\n%zu results: %zu passed, %zu warnings, %zu failed, %zu skipped\n", shown,
                 count[VGPU_CHECK_PASS], count[VGPU_CHECK_WARN], count[VGPU_CHECK_FAIL],
                 count[VGPU_CHECK_SKIP]);
        return count[VGPU_CHECK_FAIL];
}

void print_doctor(struct out *o, const struct vgpu_host *host) {
        struct vgpu_error err = {};
        struct vgpu_doctor_report *report;
        if (vgpu_doctor_run(host, &report, &err) < 0) {
                out_open_array(o, NULL);
                out_close_array(o);
                return;
        }
        print_doctor_report(o, NULL, report, NULL, 0);
        vgpu_doctor_report_free(report);
}
