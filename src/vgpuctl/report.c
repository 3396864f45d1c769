/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * report.c — `vgpuctl report -o FILE.tar.gz`: the support bundle (lib/report), with this
 * host's `list`, `types` and `doctor` output added as JSON so support sees what we saw, and
 * the BMC's event log (`sel`, JSON and text) when a BMC answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/report.h"
#include "vgpu/sensors.h"
#include "vgpuctl.h"

const struct cli_option report_options[] = {
        { "output", 'o', "FILE", "write the tarball to FILE (default vgpuctl-report-HOST-DATE.tar.gz)" },
        {},
};

/* Run a printer into a string, in JSON. */
static char *capture_json(void (*print)(struct out *, const struct vgpu_host *), const struct vgpu_host *host,
                          size_t *ret_size) {
        char *buf = NULL;
        FILE *f = open_memstream(&buf, ret_size);
        if (!f)
                return NULL;
        struct out *o = out_new(f, true, true);
        if (o) {
                print(o, host);
                out_free(o);
        }
        fclose(f);
        return buf;
}

static void print_list_object(struct out *o, const struct vgpu_host *host) {
        out_open_object(o, NULL);
        print_list(o, host);
        out_close_object(o);
}

static void print_all_types(struct out *o, const struct vgpu_host *host) {
        print_types(o, NULL, host, NULL, false);
}

int verb_report(struct cli *cli) {
        char def[256];
        const char *path = cli->opt[0];
        if (!path) {
                char hostname[64] = "host";
                gethostname(hostname, sizeof(hostname) - 1);
                time_t now = time(NULL);
                struct tm tm;
                gmtime_r(&now, &tm);
                snprintf(def, sizeof(def), "vgpuctl-report-%s-%04d%02d%02d-%02d%02d%02d.tar.gz", hostname,
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
                path = def;
        }

        /* the steps, for a person watching a terminal: doctor and the archive take seconds */
        enum { STEPS = 5 };
        struct vgpu_error err = {};
        struct vgpu_host *host;
        cli_progress(cli, "report", 1, STEPS, "scanning the host");
        if (vgpu_host_scan(VGPU_SCAN_ALL, &host, &err) < 0) {
                cli_progress_done();
                return cli_lib_error(&err);
        }

        struct vgpu_report_extra extras[5];
        size_t n = 0;
        cli_progress(cli, "report", 2, STEPS, "vgpuctl list");
        char *list_json = capture_json(print_list_object, host, &extras[n].size);
        if (list_json)
                extras[n].name = "vgpuctl/list.json", extras[n++].data = list_json;
        cli_progress(cli, "report", 3, STEPS, "vgpuctl types");
        char *types_json = capture_json(print_all_types, host, &extras[n].size);
        if (types_json)
                extras[n].name = "vgpuctl/types.json", extras[n++].data = types_json;

        cli_progress(cli, "report", 4, STEPS, "vgpuctl doctor");
        char *doctor_json = capture_json(print_doctor, host, &extras[n].size);
        if (doctor_json)
                extras[n].name = "vgpuctl/doctor.json", extras[n++].data = doctor_json;

        /* the BMC's event log, when there is a BMC that answers (no BMC is the common case) */
        char *sel_json = NULL, *sel_text = NULL;
        struct vgpu_ipmi *ipmi = NULL;
        struct vgpu_sel_entry *sel = NULL;
        size_t n_sel = 0;
        struct vgpu_error ipmi_err = {};
        if (vgpu_ipmi_open(NULL, &ipmi, &ipmi_err) >= 0) {
                if (vgpu_ipmi_sel_read(ipmi, &sel, &n_sel, &ipmi_err) >= 0) {
                        for (int json = 1; json >= 0; json--) {
                                char *buf = NULL;
                                size_t size = 0;
                                FILE *f = open_memstream(&buf, &size);
                                if (!f)
                                        continue;
                                struct out *o = out_new(f, json, json);
                                if (o) {
                                        print_sel(o, sel, n_sel);
                                        out_free(o);
                                }
                                fclose(f);
                                if (!buf)
                                        continue;
                                extras[n] = (struct vgpu_report_extra){ json ? "vgpuctl/sel.json"
                                                                             : "vgpuctl/sel.txt",
                                                                        buf, size };
                                n++;
                                *(json ? &sel_json : &sel_text) = buf;
                        }
                        free(sel);
                }
                vgpu_ipmi_free(ipmi);
        }

        cli_progress(cli, "report", 5, STEPS, "writing %s", path);
        int r = vgpu_report_write(host, path, extras, n, &err);
        cli_progress_done();
        free(list_json);
        free(types_json);
        free(doctor_json);
        free(sel_json);
        free(sel_text);
        vgpu_host_free(host);
        if (r < 0)
                return cli_lib_error(&err);
        if (cli->json) {
                struct out *o = cli_out(cli);
                out_open_object(o, NULL);
                out_string(o, OUT_JSON, "path", NULL, path);
                out_i64(o, OUT_JSON, "entries", NULL, r, true);
                out_close_object(o);
                out_free(o);
        } else
                printf("%s: %d entries. Unpack it and point VGPU_ROOT at the directory to see this host as "
                       "vgpuctl did.\n",
                       path, r);
        return EXIT_OK;
}
