/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden.c — `vgpuctl harden [--apply] [--public-if IFACE]... [--ports P,...] [--group NAME]`:
 * audit who may change the GPU carve-up and the VDI firewall, printed like `doctor`; --apply
 * fixes what can be fixed first, lists the changes, then re-audits. Exits 1 when a check fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/harden.h"
#include "vgpuctl.h"

const struct cli_option harden_options[] = {
        { "apply", 'a', NULL,
          "fix modes and owners, write, load and persist the nftables ruleset, re-audit" },
        { "public-if", 'i', "IFACE", "an interface facing untrusted networks (repeatable)" },
        { "ports", 0, "P[,P...]", "VDI management ports to close (default 443,4172,8443)" },
        { "group", 'g', "NAME|GID", "group owning /dev/vfio/N (default kvm)" },
        { "socket-group", 0, "NAME|GID", "group owning the vgpud socket (default vgpu)" },
        {},
};

#define MAX_PORTS 32

static int parse_ports(const char *s, uint16_t *ports, size_t *n) {
        const char *p = s;
        while (*p) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p || v < 1 || v > 65535 || (*end && *end != ',') || *n >= MAX_PORTS)
                        return cli_error(EXIT_USAGE,
                                         "harden: --ports takes 1 to %d ports 1-65535, comma-separated: '%s'",
                                         MAX_PORTS, s);
                ports[(*n)++] = (uint16_t) v;
                p = *end ? end + 1 : end;
                if (*end && !*p)
                        return cli_error(EXIT_USAGE, "harden: --ports: trailing comma in '%s'", s);
        }
        if (*n == 0)
                return cli_error(EXIT_USAGE, "harden: --ports needs at least one port");
        return 0;
}

/* Print the changes --apply made: a list as text, an array of strings in JSON. */
static void print_changes(struct out *o, const char *changes) {
        /* not "changes": that is apply's count of actions; a name means one thing in every output */
        out_open_array(o, "applied_changes");
        out_text(o, "Changes:%s\n", *changes ? "" : " none");
        for (const char *line = changes; *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                char *one = strndup(line, len);
                if (one)
                        out_string(o, OUT_ANY, NULL, "  %s\n", one);
                free(one);
                line = nl ? nl + 1 : line + len;
        }
        out_close_array(o);
        out_text(o, "\n");
}

int verb_harden(struct cli *cli) {
        bool apply = cli->opt[0] != NULL;
        uint16_t ports[MAX_PORTS];
        size_t n_ports = 0;
        if (cli->opt[2]) {
                int r = parse_ports(cli->opt[2], ports, &n_ports);
                if (r)
                        return r;
        }
        struct vgpu_harden_options opts = {
                .public_ifaces = cli->opt_all[1],
                .n_public_ifaces = (size_t) cli->n_opt[1],
                .ports = n_ports ? ports : NULL,
                .n_ports = n_ports,
                .vfio_group = cli->opt[3],
                .socket_group = cli->opt[4],
        };
        struct vgpu_error err = {};
        if (opts.n_public_ifaces > 0) {
                char *rules;
                if (vgpu_harden_ruleset(&opts, &rules, &err) < 0)
                        return cli_error(EXIT_USAGE, "%s", err.message);
                free(rules);
        }

        char *changes = NULL;
        if (apply && vgpu_harden_apply(&opts, &changes, &err) < 0)
                return cli_lib_error(&err);
        struct vgpu_doctor_report *report;
        if (vgpu_harden_audit(&opts, &report, &err) < 0) {
                free(changes);
                return cli_lib_error(&err);
        }

        struct out *o = cli_out(cli);
        out_open_object(o, NULL);
        out_bool(o, OUT_JSON, "applied", NULL, apply);
        if (apply)
                print_changes(o, changes);
        else
                out_null(o, "applied_changes"); /* always a member: null without --apply */
        size_t failed = print_doctor_report(o, "results", report, NULL, 0);
        out_close_object(o);
        out_free(o);
        vgpu_doctor_report_free(report);
        free(changes);
        return failed > 0 ? EXIT_FAILED : EXIT_OK;
}
