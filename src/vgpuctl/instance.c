/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * instance.c — the vGPU lifecycle verbs: create, remove, define, undefine, start, stop.
 * mdevctl's meaning, but idempotent: repeating a request is a no-op that says so (exit 0).
 * create and remove go through vgpud when it runs (daemon-client.h), with the same output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon-client.h"
#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"
#include "vgpuctl.h"

enum { OPT_PARENT, OPT_TYPE, OPT_UUID, OPT_AUTO, OPT_ATTR, OPT_PERSIST, OPT_FRAMEBUFFER };

const struct cli_option define_options[] = {
        [OPT_PARENT] = { "parent", 0, "PARENT", "parent device: a BDF, or a name like mbochs" },
        [OPT_TYPE] = { "type", 't', "TYPE", "vGPU type id (see 'vgpuctl types')" },
        [OPT_UUID] = { "uuid", 'u', "UUID",
                       "the device's UUID (default: a new one); alone, a running vGPU to define as it is" },
        [OPT_AUTO] = { "auto", 'a', NULL, "start it at boot (mdevctl start=auto)" },
        [OPT_ATTR] = { "attr", 0, "KEY=VALUE",
                       "write this device attribute after creation (repeatable, in order)" },
        {},
};

const struct cli_option create_options[] = {
        [OPT_PARENT] = { "parent", 0, "PARENT", "parent device: a BDF, or a name like mbochs" },
        [OPT_TYPE] = { "type", 't', "TYPE", "vGPU type id (see 'vgpuctl types')" },
        [OPT_UUID] = { "uuid", 'u', "UUID", "the device's UUID (default: a new one)" },
        [OPT_AUTO] = { "auto", 'a', NULL, "with --persist: start it at boot" },
        [OPT_ATTR] = { "attr", 0, "KEY=VALUE",
                       "write this device attribute after creation (repeatable, in order)" },
        [OPT_PERSIST] = { "persist", 0, NULL, "also define it, so it survives a reboot" },
        [OPT_FRAMEBUFFER] = { "framebuffer", 0, "SIZE",
                              "instead of --type: the parent's smallest type with at least SIZE (4G, 512M) "
                              "of frame buffer" },
        {},
};

/*
 * mdevctl's `define -u UUID` of a running device: its parent and type come from the device, so
 * what runs now survives a reboot as it is. A --parent or --type given with it must agree with
 * the device (a definition that differs from what runs would come back as something else).
 */
static int spec_from_running(const struct cli *cli, const char *uuid, char **ret_parent, char **ret_type) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES, &host, &err) < 0)
                return cli_lib_error(&err);
        const struct vgpu_instance *in = NULL;
        for (size_t i = 0; i < host->n_instances && !in; i++)
                if (strcasecmp(host->instances[i].uuid, uuid) == 0)
                        in = &host->instances[i];
        int r = EXIT_OK;
        char bdf[VGPU_BDF_MAX];
        const char *parent = cli->opt[OPT_PARENT];
        if (parent && vgpu_bdf_normalize(parent, bdf) == 0)
                parent = bdf;
        if (!in)
                r = cli_error(
                        EXIT_USAGE,
                        "--parent and --type are required: no running vGPU has UUID %s to take them from",
                        uuid);
        else if (parent && strcmp(parent, in->parent) != 0)
                r = cli_error(EXIT_FAILED, "%s runs on parent %s, not %s", uuid, in->parent, parent);
        else if (cli->opt[OPT_TYPE] && strcmp(cli->opt[OPT_TYPE], in->type) != 0)
                r = cli_error(EXIT_FAILED, "%s runs as type %s, not %s", uuid, in->type, cli->opt[OPT_TYPE]);
        else if (!(*ret_parent = strdup(in->parent)) || !(*ret_type = strdup(in->type)))
                r = cli_error(EXIT_FAILED, "out of memory");
        vgpu_host_free(host);
        return r;
}

/*
 * create --framebuffer SIZE: the type picked for it (vgpu_parent_pick_type()), named on stdout
 * before the outcome so the admin sees which of the same-size types it is.
 */
static int type_for_framebuffer(const struct cli *cli, const char *parent, const char *size,
                                char **ret_type) {
        uint64_t bytes;
        if (vgpu_slice_parse_memory(size, &bytes) < 0 || bytes == 0)
                return cli_error(EXIT_USAGE, "--framebuffer '%s': expected a size like 4G or 512M", size);
        char bdf[VGPU_BDF_MAX];
        if (vgpu_bdf_normalize(parent, bdf) == 0)
                parent = bdf;
        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES, &host, &err) < 0)
                return cli_lib_error(&err);
        const struct vgpu_type *t;
        int r = EXIT_OK;
        if (vgpu_parent_pick_type(host, parent, bytes, &t, &err) < 0)
                r = cli_lib_error(&err);
        else if (!(*ret_type = strdup(t->id)))
                r = cli_error(EXIT_FAILED, "out of memory");
        else if (!cli->json)
                printf("type %s%s%s%s: %lld MiB of frame buffer, the smallest with at least %s\n", t->id,
                       t->name ? " (" : "", t->name ? t->name : "", t->name ? ")" : "",
                       (long long) (t->framebuffer_bytes >> 20), size);
        vgpu_host_free(host);
        return r;
}

/* --parent/--type/--uuid/--auto/--attr into a spec; EXIT_OK or a usage error. from_running:
 * define's reading of a lone --uuid (above). */
static int spec_from_cli(const struct cli *cli, bool from_running, struct vgpu_mdev_spec *spec) {
        *spec = (struct vgpu_mdev_spec){ .auto_start = cli->opt[OPT_AUTO] != NULL };
        /* create's --framebuffer (define has no such option: from_running) stands for --type */
        const char *fb = from_running ? NULL : cli->opt[OPT_FRAMEBUFFER];
        if (fb && cli->opt[OPT_TYPE])
                return cli_error(EXIT_USAGE, "--type and --framebuffer both pick the type: give one");
        bool complete = cli->opt[OPT_PARENT] && (cli->opt[OPT_TYPE] || fb);
        if (!complete && !(from_running && cli->opt[OPT_UUID]))
                return cli_error(EXIT_USAGE, "--parent and --type are required%s (see 'vgpuctl types')",
                                 from_running ? ", or --uuid of a running vGPU"
                                              : " (or --framebuffer SIZE instead of --type)");
        if (cli->opt[OPT_UUID]) {
                /* checked here, not only by the library: a longer string would be cut to fit */
                if (!vgpu_uuid_valid(cli->opt[OPT_UUID]))
                        return cli_error(EXIT_USAGE,
                                         "--uuid '%s': not a UUID (expected 8-4-4-4-12 hex digits)",
                                         cli->opt[OPT_UUID]);
                snprintf(spec->uuid, sizeof(spec->uuid), "%s", cli->opt[OPT_UUID]);
        }
        if (!complete) {
                int r = spec_from_running(cli, spec->uuid, &spec->parent, &spec->type);
                if (r != EXIT_OK)
                        return r;
        } else if (fb) {
                spec->parent = strdup(cli->opt[OPT_PARENT]);
                int r = spec->parent ? type_for_framebuffer(cli, spec->parent, fb, &spec->type) : EXIT_OK;
                if (r != EXIT_OK)
                        return r;
        } else {
                spec->parent = strdup(cli->opt[OPT_PARENT]);
                spec->type = strdup(cli->opt[OPT_TYPE]);
        }
        spec->attrs = calloc((size_t) cli->n_opt[OPT_ATTR] + 1, sizeof(*spec->attrs));
        if (!spec->parent || !spec->type || !spec->attrs)
                return cli_error(EXIT_FAILED, "out of memory");
        for (int i = 0; i < cli->n_opt[OPT_ATTR]; i++) {
                const char *kv = cli->opt_all[OPT_ATTR][i], *eq = strchr(kv, '=');
                if (!eq || eq == kv)
                        return cli_error(EXIT_USAGE, "--attr '%s': expected KEY=VALUE", kv);
                struct vgpu_mdev_attr *a = &spec->attrs[spec->n_attrs++];
                a->key = strndup(kv, (size_t) (eq - kv));
                a->value = strdup(eq + 1);
                if (!a->key || !a->value)
                        return cli_error(EXIT_FAILED, "out of memory");
        }
        return EXIT_OK;
}

static void print_outcome_cli(const struct cli *cli, const char *verb_done, const char *verb_noop, int r,
                              const char *uuid, const char *parent, const char *type) {
        struct out *o = cli_out(cli);
        print_outcome(o, verb_done, verb_noop, r, uuid, parent, type);
        out_free(o);
}

int verb_create(struct cli *cli) {
        struct vgpu_mdev_spec spec;
        int r = spec_from_cli(cli, false, &spec);
        if (r == EXIT_OK) {
                struct vgpu_error err = {};
                if (cli->opt[OPT_AUTO] && !cli->opt[OPT_PERSIST])
                        r = cli_error(EXIT_USAGE, "--auto only means something with --persist");
                else if ((r = daemon_create(cli, &spec, cli->opt[OPT_PERSIST] != NULL)) != DAEMON_DIRECT)
                        ; /* the daemon did it, and its answer is printed */
                else if ((r = vgpu_mdev_create(&spec, cli->opt[OPT_PERSIST] ? VGPU_CREATE_PERSIST : 0,
                                               &err)) < 0)
                        r = cli_lib_error(&err);
                else {
                        print_outcome_cli(cli, "created", "already exists", r, spec.uuid, spec.parent,
                                          spec.type);
                        r = EXIT_OK;
                }
        }
        vgpu_mdev_spec_free(&spec);
        return r;
}

int verb_define(struct cli *cli) {
        struct vgpu_mdev_spec spec;
        int r = spec_from_cli(cli, true, &spec);
        if (r == EXIT_OK) {
                struct vgpu_error err = {};
                if ((r = vgpu_mdev_define(&spec, &err)) < 0)
                        r = cli_lib_error(&err);
                else {
                        print_outcome_cli(cli, "defined", "already defined", r, spec.uuid, spec.parent,
                                          spec.type);
                        r = EXIT_OK;
                }
        }
        vgpu_mdev_spec_free(&spec);
        return r;
}

/* The verbs that take one UUID (or BDF) and nothing else. */
static int one_target(struct cli *cli, int (*op)(const char *, struct vgpu_error *), const char *done,
                      const char *noop) {
        struct vgpu_error err = {};
        int r = op(cli->argv[0], &err);
        if (r < 0)
                return cli_lib_error(&err);
        print_outcome_cli(cli, done, noop, r, cli->argv[0], NULL, NULL);
        return EXIT_OK;
}

int verb_remove(struct cli *cli) {
        int r = daemon_remove(cli, cli->argv[0]);
        if (r != DAEMON_DIRECT)
                return r;
        return one_target(cli, vgpu_mdev_remove, "removed", "was not there");
}

const struct cli_option undefine_options[] = {
        { "parent", 0, "PARENT",
          "the parent whose definition to remove, when the UUID is defined on several" },
        {},
};

int verb_undefine(struct cli *cli) {
        struct vgpu_error err = {};
        int r = vgpu_mdev_undefine_on(cli->argv[0], cli->opt[0], &err);
        if (r < 0)
                return cli_lib_error(&err);
        print_outcome_cli(cli, "undefined", "was not defined", r, cli->argv[0], cli->opt[0], NULL);
        return EXIT_OK;
}

int verb_start(struct cli *cli) {
        return one_target(cli, vgpu_mdev_start, "started", "is already running");
}

int verb_stop(struct cli *cli) {
        return one_target(cli, vgpu_mdev_stop, "stopped", "is not running");
}
