/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor.c — `vgpuctl doctor [--check ID,...]`: run libvgpu's checks and print one line per
 * result (evidence and remedy below each warning and failure, a tally at the end), or with
 * --json an array of {id, status, subject, summary, evidence, remedy}. Exits 1 when a check
 * fails, so scripts can gate on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/doctor.h"
#include "vgpuctl.h"

const struct cli_option doctor_options[] = {
        { "check", 'c', "ID[,ID...]", "run only these checks (ids as printed; comma-separated)" },
        {},
};

#define MAX_SELECTED 64

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
                [VGPU_CHECK_PASS] = "PASS", [VGPU_CHECK_WARN] = "WARN",
                [VGPU_CHECK_FAIL] = "FAIL", [VGPU_CHECK_SKIP] = "SKIP",
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
static size_t print_report(struct out *o, const struct vgpu_doctor_report *report, const char *const *sel, size_t n_sel) {
        size_t count[4] = {}, shown = 0;
        out_open_array(o, NULL);
        for (size_t i = 0; i < report->n_results; i++) {
                const struct vgpu_check_result *r = &report->results[i];
                if (!selected(r->id, sel, n_sel))
                        continue;
                print_result(o, r);
                count[r->status]++;
                shown++;
        }
        out_close_array(o);
        out_text(o, "\n%zu results: %zu passed, %zu warnings, %zu failed, %zu skipped\n", shown, count[VGPU_CHECK_PASS],
                 count[VGPU_CHECK_WARN], count[VGPU_CHECK_FAIL], count[VGPU_CHECK_SKIP]);
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
        print_report(o, report, NULL, 0);
        vgpu_doctor_report_free(report);
}

/* Split "a,b" (in place, in buf) into sel; unknown ids are a usage error. */
static int parse_selection(char *buf, const char **sel, size_t *n_sel) {
        const char *const *ids = vgpu_doctor_check_ids();
        char *save = NULL;
        for (char *id = strtok_r(buf, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
                bool known = false;
                for (const char *const *k = ids; *k && !known; k++)
                        known = strcmp(*k, id) == 0;
                if (!known) {
                        char list[1024] = "";
                        for (const char *const *k = ids; *k; k++)
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", k == ids ? "" : ", ", *k);
                        return cli_error(EXIT_USAGE, "doctor: unknown check '%s' (known: %s)", id, list);
                }
                if (*n_sel >= MAX_SELECTED)
                        return cli_error(EXIT_USAGE, "doctor: too many --check ids");
                sel[(*n_sel)++] = id;
        }
        if (*n_sel == 0)
                return cli_error(EXIT_USAGE, "doctor: --check needs at least one check id");
        return 0;
}

int verb_doctor(struct cli *cli) {
        const char *sel[MAX_SELECTED];
        size_t n_sel = 0;
        char *buf = NULL;

        if (cli->opt[0]) {
                if (!(buf = strdup(cli->opt[0])))
                        return cli_error(EXIT_FAILED, "out of memory");
                int r = parse_selection(buf, sel, &n_sel);
                if (r) {
                        free(buf);
                        return r;
                }
        }

        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_ALL, &host, &err) < 0) {
                free(buf);
                return cli_lib_error(&err);
        }
        struct vgpu_doctor_report *report;
        if (vgpu_doctor_run(host, &report, &err) < 0) {
                vgpu_host_free(host);
                free(buf);
                return cli_lib_error(&err);
        }

        struct out *o = cli_out(cli);
        size_t failed = print_report(o, report, sel, n_sel);
        out_free(o);
        vgpu_doctor_report_free(report);
        vgpu_host_free(host);
        free(buf);
        return failed > 0 ? EXIT_FAILED : EXIT_OK;
}
