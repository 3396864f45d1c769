/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * apply.c — `vgpuctl apply`, `assert` and `export`: the declarative side (lib/plan).
 * apply makes the host match host.yaml (minimal plan, rollback on failure); assert exits 0
 * iff it already does; export prints the current carve-up (slices included) as a host.yaml.
 * apply --restore (boot) is vgpu_restore(): the recorded slices, then the saved configuration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-client.h"
#include "vgpu/apply.h"
#include "vgpu/slice.h"
#include "vgpuctl.h"

#define DEFAULT_CONFIG "/etc/vgpuctl/host.yaml"

enum { OPT_FILE, OPT_DRY_RUN, OPT_DIFF, OPT_FORCE, OPT_RESTORE };

const struct cli_option apply_options[] = {
        [OPT_FILE] = { "file", 'f', "FILE", "the configuration (default " DEFAULT_CONFIG ")" },
        [OPT_DRY_RUN] = { "dry-run", 'n', NULL, "print the plan, change nothing" },
        [OPT_DIFF] = { "diff", 0, NULL, "print the changes as -/+ lines" },
        [OPT_FORCE] = { "force", 0, NULL, "also remove vGPUs a running VM holds" },
        [OPT_RESTORE] = { "restore", 0, NULL,
                          "recreate the recorded slices and apply the last applied configuration "
                          "(" VGPU_STATE_CONFIG "), as at boot" },
        {},
};

const struct cli_option assert_options[] = {
        { "file", 'f', "FILE", "the configuration (default " DEFAULT_CONFIG ")" },
        {},
};

/* FILE as given is the caller's path; the defaults are host paths (under VGPU_ROOT). */
static int load(const char *path, bool host_path, char **ret_text, struct vgpu_config **ret_cfg) {
        struct vgpu_error err = {};
        if (vgpu_config_load(path, host_path ? VGPU_CONFIG_HOST_PATH : 0, ret_cfg, ret_text, &err) < 0)
                return cli_lib_error(&err);
        return EXIT_OK;
}

static void print_plan_cli(const struct cli *cli, const struct vgpu_plan *plan, bool diff,
                           const char *heading) {
        struct out *o = cli_out(cli);
        print_plan(o, plan, diff, heading);
        out_free(o);
}

static void apply_step(size_t n, size_t n_steps, const struct vgpu_action *a, void *userdata) {
        char what[512];
        describe_action(what, sizeof(what), a);
        cli_progress(userdata, "apply", n, n_steps, "%s %s", vgpu_action_kind_to_string(a->kind), what);
}

/* In this process: vgpu_apply, then the shared printer the daemon answers with too. */
static int apply_here(const struct cli *cli, const struct vgpu_config *cfg, const char *text,
                      const char *path, unsigned flags) {
        struct vgpu_error err = {};
        struct vgpu_plan *plan = NULL;
        /* the steps as they run (through vgpud there is no progress: its answer comes at the end) */
        const struct vgpu_progress progress = { apply_step, (void *) cli };
        int r = vgpu_apply_progress(cfg, text, flags, cli_progress_wanted(cli) ? &progress : NULL, &plan,
                                    &err);
        cli_progress_done();
        if (r < 0)
                return cli_lib_error(&err);
        struct out *o = cli_out(cli);
        print_apply(o, plan, cli->opt[OPT_DIFF] != NULL, flags & VGPU_APPLY_DRY_RUN, path);
        out_free(o);
        vgpu_plan_free(plan);
        return EXIT_OK;
}

/* apply --restore: vgpu_restore(), here (vgpud restores by itself on start), then the plan as
 * every apply prints it. */
static int restore_here(const struct cli *cli) {
        unsigned flags = (cli->opt[OPT_DRY_RUN] ? VGPU_APPLY_DRY_RUN : 0) |
                         (cli->opt[OPT_FORCE] ? VGPU_APPLY_FORCE : 0);
        const struct vgpu_progress progress = { apply_step, (void *) cli };
        struct vgpu_restore_report report;
        struct vgpu_error err = {};
        int r = vgpu_restore(NULL, 0, flags, cli_progress_wanted(cli) ? &progress : NULL, &report, &err);
        cli_progress_done();
        int slices_failed = report.slices_error.code < 0 ? cli_lib_error(&report.slices_error) : EXIT_OK;
        if (report.n_slices && !cli->json)
                printf("restored %u slice%s from %s\n", report.n_slices, report.n_slices == 1 ? "" : "s",
                       VGPU_SLICE_RECORDS);
        if (r < 0)
                return cli_lib_error(&err);
        if (report.nothing_saved) {
                /* at boot on a host never configured: nothing to do, not a failure; --json
                 * answers as every apply does, with an empty plan */
                char note[256];
                snprintf(note, sizeof(note),
                         "nothing to restore: no configuration was applied on this host (%s)",
                         VGPU_STATE_CONFIG);
                if (cli->json)
                        print_plan_cli(cli, &(struct vgpu_plan){ .notes = note }, false, NULL);
                else
                        printf("%s\n", note);
                return slices_failed;
        }
        struct out *o = cli_out(cli);
        print_apply(o, report.plan, cli->opt[OPT_DIFF] != NULL, flags & VGPU_APPLY_DRY_RUN,
                    VGPU_STATE_CONFIG);
        out_free(o);
        vgpu_plan_free(report.plan);
        return slices_failed;
}

int verb_apply(struct cli *cli) {
        bool restore = cli->opt[OPT_RESTORE] != NULL;
        if (restore && cli->opt[OPT_FILE])
                return cli_error(EXIT_USAGE, "--restore applies %s; it takes no --file", VGPU_STATE_CONFIG);
        if (restore && cli->daemon == CLI_DAEMON_ALWAYS)
                return cli_error(
                        EXIT_USAGE,
                        "--restore always runs here (vgpud restores by itself on start); drop --daemon");
        /* A restore runs here: the daemon would parse the saved text again and see its slices
         * key, which the restore must ignore; it is root's boot step, under the same lock. */
        if (restore)
                return restore_here(cli);
        const char *path = cli->opt[OPT_FILE] ? cli->opt[OPT_FILE] : DEFAULT_CONFIG;
        char *text;
        struct vgpu_config *cfg;
        struct vgpu_error err = {};
        if (vgpu_config_load(path, !cli->opt[OPT_FILE] ? VGPU_CONFIG_HOST_PATH : 0, &cfg, &text, &err) < 0)
                return cli_lib_error(&err);
        unsigned flags = (cli->opt[OPT_DRY_RUN] ? VGPU_APPLY_DRY_RUN : 0) |
                         (cli->opt[OPT_FORCE] ? VGPU_APPLY_FORCE : 0);
        /* the file was read and checked here, as the caller; through vgpud its text is sent */
        int r = daemon_apply(cli, text, path, flags & VGPU_APPLY_DRY_RUN, flags & VGPU_APPLY_FORCE,
                             cli->opt[OPT_DIFF] != NULL);
        if (r == DAEMON_DIRECT)
                r = apply_here(cli, cfg, text, path, flags);
        free(text);
        vgpu_config_free(cfg);
        return r;
}

int verb_assert(struct cli *cli) {
        const char *path = cli->opt[0] ? cli->opt[0] : DEFAULT_CONFIG;
        char *text;
        struct vgpu_config *cfg;
        int r = load(path, !cli->opt[0], &text, &cfg);
        if (r != EXIT_OK)
                return r;
        free(text);
        struct vgpu_error err = {};
        struct vgpu_plan *plan = NULL;
        r = vgpu_plan_for(cfg, 0, &plan, &err);
        vgpu_config_free(cfg);
        if (r < 0)
                return cli_lib_error(&err);
        bool matches = plan->n_actions == 0;
        if (matches && !cli->json)
                printf("the host matches %s\n", path);
        else
                print_plan_cli(cli, plan, true, "the host differs; apply would:");
        vgpu_plan_free(plan);
        return matches ? EXIT_OK : EXIT_FAILED;
}

int verb_export(struct cli *cli) {
        /* its output is a host.yaml, to edit and apply: a JSON reader must not get YAML instead */
        if (cli->json)
                return cli_error(EXIT_USAGE,
                                 "export prints a host.yaml; it has no --json (see 'vgpuctl list --json')");
        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES | VGPU_SCAN_DETAILS, &host, &err) < 0)
                return cli_lib_error(&err);
        struct vgpu_mdev_spec *defs = NULL;
        size_t n_defs = 0;
        char *text = NULL;
        struct vgpu_slice_status *slices = NULL;
        size_t n_slices = 0;
        int r = vgpu_mdev_definitions(&defs, &n_defs, NULL, &err);
        if (r >= 0)
                r = vgpu_slice_list(&slices, &n_slices, &err);
        if (r >= 0)
                r = vgpu_config_export_slices(host, defs, n_defs, slices, n_slices, &text, &err);
        free(slices);
        vgpu_mdev_specs_free(defs, n_defs);
        vgpu_host_free(host);
        if (r < 0)
                return cli_lib_error(&err);
        fputs(text, stdout);
        free(text);
        return EXIT_OK;
}
