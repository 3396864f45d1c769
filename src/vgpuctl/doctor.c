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
        { "check", 'c', "ID[,ID...]", "run only these checks (ids as printed; comma-separated or repeated)" },
        {},
};

#define MAX_SELECTED 64

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
                                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                                         k == ids ? "" : ", ", *k);
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
                /* -c a,b -c c: every value, joined */
                size_t len = 1;
                for (int i = 0; i < cli->n_opt[0]; i++)
                        len += strlen(cli->opt_all[0][i]) + 1;
                if (!(buf = calloc(1, len)))
                        return cli_error(EXIT_FAILED, "out of memory");
                for (int i = 0; i < cli->n_opt[0]; i++) {
                        if (i)
                                strcat(buf, ",");
                        strcat(buf, cli->opt_all[0][i]);
                }
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
        size_t failed = print_doctor_report(o, NULL, report, sel, n_sel);
        out_free(o);
        vgpu_doctor_report_free(report);
        vgpu_host_free(host);
        free(buf);
        return failed > 0 ? EXIT_FAILED : EXIT_OK;
}
