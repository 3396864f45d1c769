/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * main.c — vgpuctl's dispatcher: global options, the verb table, help generated from it.
 * Verbs are matched exactly (no prefix abbreviations: they break when verbs are added).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "daemon-client.h"
#include "vgpuctl.h"

/* Global options without a short name are told apart by their index (see build_getopt). */
enum { GLOBAL_DIRECT = 4, GLOBAL_DAEMON };

static const struct cli_option global_options[] = {
        { "json", 'j', NULL, "print JSON instead of a table" },
        { "pretty", 'p', NULL, "indent JSON" },
        { "help", 'h', NULL, "show help" },
        { "version", 'V', NULL, "show the version" },
        [GLOBAL_DIRECT] = { "direct", 0, NULL, "change the host from this process, never through vgpud" },
        [GLOBAL_DAEMON] = { "daemon", 0, NULL, "go through vgpud; fail when it is not running" },
        {},
};

static const struct verb verbs[] = {
        { "list", "", "GPUs, virtual functions and vGPU instances", 0, 0, verb_list, list_options },
        { "show", "BDF|UUID", "everything known about one GPU, VF or vGPU instance", 1, 1, verb_show, NULL },
        { "types", "[PARENT]", "vGPU types each parent offers", 0, 1, verb_types, types_options },
        { "create", "", "create a vGPU now (--persist: also define it)", 0, 0, verb_create, create_options,
          .via_daemon = true },
        { "remove", "UUID|BDF", "remove a running vGPU", 1, 1, verb_remove, NULL, .via_daemon = true },
        { "define", "", "define a persistent vGPU (mdevctl's store)", 0, 0, verb_define, define_options },
        { "undefine", "UUID", "remove a vGPU's definition", 1, 1, verb_undefine, undefine_options },
        { "start", "UUID", "create a defined vGPU", 1, 1, verb_start, NULL },
        { "stop", "UUID", "remove a running vGPU, keeping its definition", 1, 1, verb_stop, NULL },
        { "slice", "COMMAND [NAME]", "software slices for containers: create, list, show, remove", 1, 2, NULL,
          NULL, .sub = slice_verbs },
        { "vfs", "BDF", "enable --count N SR-IOV virtual functions (0 disables)", 1, 2, verb_vfs,
          vfs_options },
        { "apply", "", "make the host match host.yaml (minimal, rolled back on failure)", 0, 0, verb_apply,
          apply_options, .via_daemon = true },
        { "assert", "", "exit 0 iff the host matches host.yaml", 0, 0, verb_assert, assert_options },
        { "export", "", "print the current carve-up as a host.yaml", 0, 0, verb_export, NULL },
        { "assign", "UUID|BDF", "attach a vGPU to a VM through libvirt (--domain NAME)", 1, 1, verb_assign,
          assign_options },
        { "detach", "UUID|BDF", "detach a vGPU from a VM through libvirt (--domain NAME)", 1, 1, verb_detach,
          detach_options },
        { "xml", "UUID|BDF", "print a vGPU's libvirt <hostdev> element (--qemu: QEMU's -device)", 1, 1,
          verb_xml, xml_options },
        { "doctor", "", "check every prerequisite of GPU virtualization", 0, 0, verb_doctor, doctor_options },
        { "harden", "", "audit (--apply: fix) device permissions and the VDI firewall", 0, 0, verb_harden,
          harden_options },
        { "diagnose", "DOMAIN", "the VFIO/mdev errors in a VM's QEMU log, with the check and remedy for each",
          1, 1, verb_diagnose, NULL },
        { "sel", "", "the BMC's System Event Log (over-temperature, under-voltage flagged)", 0, 0, verb_sel,
          NULL },
        { "report", "", "collect what support needs into a tarball", 0, 0, verb_report, report_options },
        { "fleet", "CMD [ARG]",
          "the fleet through vgpu-broker: hosts, gpus, sessions, place, release, cordon, uncordon, drain, "
          "explain",
          1, 2, verb_fleet, fleet_options },
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

const struct verb *cli_verbs(size_t *ret_n) {
        *ret_n = N_VERBS;
        return verbs;
}

const struct verb *cli_find_verb(const char *name) {
        for (size_t i = 0; i < N_VERBS; i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

const struct verb *cli_find_sub(const struct verb *v, const char *name) {
        for (const struct verb *s = v->sub; s && s->name; s++)
                if (strcmp(s->name, name) == 0)
                        return s;
        return NULL;
}

const char *cli_opt(const struct cli *cli, const char *name) {
        for (const struct cli_option *o = cli->options; o && o->name; o++)
                if (strcmp(o->name, name) == 0)
                        return cli->opt[o - cli->options];
        return NULL;
}

const struct cli_option *cli_global_options(void) {
        return global_options;
}

int cli_error(int code, const char *fmt, ...) {
        va_list ap;
        fputs("vgpuctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

int cli_lib_error(const struct vgpu_error *err) {
        return cli_error(EXIT_FAILED, "%s", err->message[0] ? err->message : "unknown error");
}

struct out *cli_out(const struct cli *cli) {
        struct out *o = out_new(stdout, cli->json, cli->pretty);
        if (!o) {
                fputs("vgpuctl: out of memory\n", stderr);
                exit(EXIT_FAILED);
        }
        return o;
}

struct out *cli_out_table(const struct cli *cli) {
        struct out *o = cli_out(cli);
        unsigned columns = 0;
        if (!cli->json && isatty(STDOUT_FILENO)) {
                /* $COLUMNS first, as ls and systemd do: it also lets a test pick the width */
                const char *e = getenv("COLUMNS");
                struct winsize ws = {};
                if (e && atoi(e) > 0)
                        columns = (unsigned) atoi(e);
                else if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                        columns = ws.ws_col;
        }
        out_set_table(o, columns);
        return o;
}

static void print_options(const struct cli_option *opts) {
        for (const struct cli_option *o = opts; o && o->name; o++) {
                char left[64];
                snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "",
                         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                         o->arg ? " " : "", o->arg ? o->arg : "");
                printf("  %-24s %s\n", left + (o->short_name ? 0 : 1), o->help);
        }
}

static void help_main(void) {
        printf("Usage: vgpuctl [OPTIONS] COMMAND [ARGS]\n\n" CLI_DESCRIPTION "\n\nCommands:\n");
        for (size_t i = 0; i < N_VERBS; i++)
                printf("  %-9s %-9s %s%s\n", verbs[i].name, verbs[i].args, verbs[i].summary,
                       verbs[i].via_daemon ? " [vgpud]" : "");
        printf("\nOptions:\n");
        print_options(global_options);
        printf("\n[vgpud]: " CLI_DAEMON_NOTE "\n"
               "\nEnvironment: VGPU_ROOT prefixes every host path (default /).\n"
               "  " DAEMON_SOCKET_ENV " the daemon's socket (default " VGPU_DAEMON_SOCKET
               " under VGPU_ROOT).\n"
               "  " DAEMON_TIMEOUT_ENV " seconds to wait for the daemon's answer (default 300).\n"
               "Run 'vgpuctl COMMAND --help' for a command's options.\n");
}

/* parent: the verb of verbs v is a command of, or NULL */
static void help_verb(const struct verb *parent, const struct verb *v) {
        printf("Usage: vgpuctl %s%s%s [OPTIONS]%s%s\n\n%s.\n", parent ? parent->name : "", parent ? " " : "",
               v->name, v->args[0] ? " " : "", v->args, v->summary);
        if (v->sub) {
                printf("\nCommands:\n");
                for (const struct verb *s = v->sub; s->name; s++)
                        printf("  %-9s %-9s %s\n", s->name, s->args, s->summary);
                printf("\nRun 'vgpuctl %s COMMAND --help' for a command's options.\n", v->name);
        }
        if (v->via_daemon)
                printf("Through vgpud when it runs (--direct: never, --daemon: only), else in this "
                       "process.\n");
        printf("\nOptions:\n");
        print_options(v->options);
        print_options(global_options);
}

/* Build a getopt_long table from global + verb options; returns the short-option string. */
static void build_getopt(const struct cli_option *verb_opts, bool stop_at_positional, struct option *longs,
                         char *shorts) {
        size_t n = 0, s = 0;
        if (stop_at_positional)
                shorts[s++] = '+'; /* global options end at the verb: "vgpuctl -j list" */
        shorts[s++] = ':';
        for (int pass = 0; pass < 2; pass++)
                for (const struct cli_option *o = pass ? verb_opts : global_options; o && o->name; o++) {
                        int id = pass ? 1000 + (int) (o - verb_opts)
                                      : (o->short_name ? o->short_name : 500 + (int) n);
                        longs[n++] = (struct option){ o->name, o->arg ? required_argument : no_argument, NULL,
                                                      id };
                        if (o->short_name) {
                                shorts[s++] = o->short_name;
                                if (o->arg)
                                        shorts[s++] = ':';
                        }
                }
        longs[n] = (struct option){};
        shorts[s] = '\0';
}

/* Parse options from argv[optind...]; verb options are stored in cli->opt. */
static unsigned daemon_options; /* 1: --direct given, 2: --daemon given (both: refused) */

static int parse_options(int argc, char **argv, const struct verb *v, struct cli *cli, bool *help,
                         bool *version) {
        struct option longs[32];
        char shorts[64];
        const struct cli_option *vo = v ? v->options : NULL;
        build_getopt(vo, v == NULL, longs, shorts);
        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
                switch (c) {
                case 'j':
                        cli->json = true;
                        break;
                case 'p':
                        cli->pretty = cli->json = true;
                        break;
                case 'h':
                        *help = true;
                        break;
                case 'V':
                        *version = true;
                        break;
                case 500 + GLOBAL_DIRECT:
                        cli->daemon = CLI_DAEMON_NEVER;
                        daemon_options |= 1;
                        break;
                case 500 + GLOBAL_DAEMON:
                        cli->daemon = CLI_DAEMON_ALWAYS;
                        daemon_options |= 2;
                        break;
                case ':':
                        return cli_error(EXIT_USAGE, "option '%s' needs an argument", argv[optind - 1]);
                case '?':
                        return cli_error(EXIT_USAGE, "unknown option '%s'%s", argv[optind - 1],
                                         v ? "" : " (options of a command go after the command)");
                default:
                        for (const struct cli_option *o = vo; o && o->name; o++)
                                if (c == 1000 + (int) (o - vo) || o->short_name == c) {
                                        size_t i = (size_t) (o - vo);
                                        cli->opt[i] = optarg ? optarg : "";
                                        if (cli->n_opt[i] == CLI_MAX_REPEAT)
                                                return cli_error(EXIT_USAGE, "--%s given more than %d times",
                                                                 o->name, CLI_MAX_REPEAT);
                                        cli->opt_all[i][cli->n_opt[i]++] = cli->opt[i];
                                        break;
                                }
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        struct cli cli = {};
        bool help = false, version = false;

        /* For the shells' completion scripts and the build's man page: not verbs (not in --help),
         * and looked at before anything else so that no other command pays for them. */
        if (argc > 1 && strcmp(argv[1], "__complete") == 0)
                return cli_complete(argc - 2, argv + 2);
        if (argc > 1 && strcmp(argv[1], "__man") == 0)
                return cli_man(argc - 2, argv + 2);

        int r = parse_options(argc, argv, NULL, &cli, &help, &version);
        if (r)
                return r;
        if (version) {
                printf("vgpuctl %s\n", vgpu_version());
                return EXIT_OK;
        }
        if (optind >= argc) {
                if (help) {
                        help_main();
                        return EXIT_OK;
                }
                help_main();
                return EXIT_USAGE;
        }

        const char *name = argv[optind];
        const struct verb *v = cli_find_verb(name), *parent = NULL;
        if (!v)
                return cli_error(EXIT_USAGE, "unknown command '%s' (see 'vgpuctl --help')", name);

        /* Options of the verb, anywhere after it (GNU permutation, not "+"). */
        int vargc = argc - optind;
        char **vargv = argv + optind;
        char full_name[64];
        snprintf(full_name, sizeof(full_name), "%s", v->name);
        if (v->sub) {
                /* the command is the first word after the verb that is not an option (only global
                 * options, which take no value, may come before it): its options follow it */
                int at = 1;
                while (at < vargc && vargv[at][0] == '-' && strcmp(vargv[at], "--") != 0)
                        at++;
                if (at >= vargc || vargv[at][0] == '-') {
                        bool asked = false;
                        for (int i = 1; i < vargc; i++)
                                asked = asked || !strcmp(vargv[i], "--help") || !strcmp(vargv[i], "-h");
                        if (asked || help) {
                                help_verb(NULL, v);
                                return EXIT_OK;
                        }
                        return cli_error(EXIT_USAGE, "'%s' needs a command (see 'vgpuctl %s --help')",
                                         v->name, v->name);
                }
                const struct verb *s = cli_find_sub(v, vargv[at]);
                if (!s)
                        return cli_error(EXIT_USAGE, "unknown %s command '%s' (see 'vgpuctl %s --help')",
                                         v->name, vargv[at], v->name);
                /* drop the command's word: what follows is its arguments and options */
                memmove(&vargv[at], &vargv[at + 1], (size_t) (vargc - at - 1) * sizeof(*vargv));
                vargc--;
                parent = v;
                v = s;
                snprintf(full_name, sizeof(full_name), "%s %s", parent->name, v->name);
        }
        optind = 0; /* 0, not 1: glibc then forgets the '+' ordering of the first pass */
        r = parse_options(vargc, vargv, v, &cli, &help, &version);
        if (r)
                return r;
        if (help) {
                help_verb(parent, v);
                return EXIT_OK;
        }
        cli.options = v->options;
        cli.argc = vargc - optind;
        cli.argv = vargv + optind;
        if (daemon_options == 3)
                return cli_error(EXIT_USAGE, "--direct and --daemon exclude each other");
        if (cli.daemon == CLI_DAEMON_ALWAYS && !v->via_daemon)
                return cli_error(EXIT_USAGE,
                                 "'%s' always runs directly: vgpud serves create, remove and apply", v->name);
        if (cli.argc < v->min_args || cli.argc > v->max_args)
                return cli_error(EXIT_USAGE, "'%s' takes %s%s (see 'vgpuctl %s --help')", full_name,
                                 v->max_args == 0 ? "no arguments" : "arguments: ", v->args, full_name);
        return v->run(&cli);
}
