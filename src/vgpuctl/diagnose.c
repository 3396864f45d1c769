/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diagnose.c — `vgpuctl diagnose DOMAIN`: the VFIO/mdev errors of the domain's last start, read
 * from its QEMU log by libvgpu (vgpu/diagnose.h), each with the doctor check that looks at its
 * cause and the remedy; or with --json one object. Exits 1 when an error was found, so a
 * script that starts VMs can ask why one did not.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vgpu/root.h"
#include "vgpu/diagnose.h"
#include "vgpuctl.h"

static void print_finding(struct out *o, const struct vgpu_diag_finding *f) {
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "severity", "%-5s ", f->severity == VGPU_CHECK_FAIL ? "error" : "warn");
        out_string(o, OUT_ANY, "kind", "%-26s ", f->kind);
        out_string(o, OUT_ANY, "check", "%-19s ", f->check);
        out_string(o, OUT_ANY, "device", "%-36s ", f->device);
        out_i64(o, OUT_ANY, "iommu_group", "%5s", f->group, f->group >= 0);
        out_text(o, "\n");
        out_u64(o, OUT_ANY, "line", "      log line %s", f->line);
        out_u64(o, OUT_JSON, "count", NULL, f->count);
        if (f->count > 1)
                out_text(o, " (and %u more like it)", f->count - 1);
        out_string(o, OUT_ANY, "message", ": %s\n", f->message);
        out_string(o, OUT_ANY, "remedy", "      remedy: %s\n", f->remedy);
        out_close_object(o);
}

int verb_diagnose(struct cli *cli) {
        struct vgpu_error err = {};
        struct vgpu_diagnosis *d;
        if (vgpu_diagnose_domain(cli->argv[0], &d, &err) < 0)
                return cli_lib_error(&err);

        size_t errors = 0;
        for (size_t i = 0; i < d->n_findings; i++)
                errors += d->findings[i].severity == VGPU_CHECK_FAIL;

        struct out *o = cli_out(cli);
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "domain", "domain %s", d->domain);
        out_text(o, ": %s%s", vgpu_root_prefix(), d->log);
        out_string(o, OUT_JSON, "log", NULL, d->log);
        out_string(o, OUT_ANY, "started", ", last started %s", d->started);
        out_u64(o, OUT_JSON, "start_line", NULL, d->start_line);
        out_string(o, OUT_JSON, "shutdown_reason", NULL, d->shutdown_reason);
        if (d->shutdown_reason)
                out_text(o, ", shut down: %s\n", d->shutdown_reason);
        else
                out_text(o, ", still running (no shutdown logged)\n");
        if (d->n_findings > 0)
                out_text(o, "%-5s %-26s %-19s %-36s %5s\n", "SEV", "KIND", "CHECK", "DEVICE", "GROUP");
        out_open_array(o, "findings");
        for (size_t i = 0; i < d->n_findings; i++)
                print_finding(o, &d->findings[i]);
        out_close_array(o);
        if (d->n_findings == 0)
                out_text(o, "no VFIO or mdev errors in its last start\n");
        else
                out_text(o, "%zu errors, %zu warnings\n", errors, d->n_findings - errors);
        out_close_object(o);
        out_free(o);
        vgpu_diagnosis_free(d);
        return errors > 0 ? EXIT_FAILED : EXIT_OK;
}
