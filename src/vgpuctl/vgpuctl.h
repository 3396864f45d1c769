/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vgpuctl.h — what the CLI's object files share: the parsed command line and the verb table.
 * Each verb lives in the file of its object (gpu.c: list/show, type.c: types, doctor.c,
 * report.c) and only parses, calls libvgpu and prints.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "output.h"
#include "print.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1, /* a failed check or operation */
        EXIT_USAGE = 2,
};

struct cli_option {
        const char *name; /* long name, without "--" */
        char short_name;  /* 0 if none */
        const char *arg;  /* metavar, NULL for a flag */
        const char *help;
};

#define CLI_MAX_OPTIONS 16
#define CLI_MAX_REPEAT  32

/* Whether create/remove/apply go through vgpud (daemon-client.h): --direct, --daemon, or neither. */
enum cli_daemon { CLI_DAEMON_AUTO, CLI_DAEMON_NEVER, CLI_DAEMON_ALWAYS };

struct cli {
        const struct cli_option *options; /* the verb's option table, for cli_opt() */
        bool json, pretty;
        enum cli_daemon daemon;
        int argc; /* positional arguments after the verb */
        char **argv;
        /* values of the verb's own options, in the order of its option table; NULL if unset,
         * "" for a flag that was given */
        const char *opt[CLI_MAX_OPTIONS];
        /* every value of a repeated option (--attr K=V --attr K2=V2), in order */
        const char *opt_all[CLI_MAX_OPTIONS][CLI_MAX_REPEAT];
        int n_opt[CLI_MAX_OPTIONS];
};

struct verb {
        const char *name;
        const char *args; /* for help: "BDF" */
        const char *summary;
        int min_args, max_args;
        int (*run)(struct cli *cli);
        const struct cli_option *options; /* NULL-name terminated, or NULL */
        bool via_daemon;                  /* vgpud serves it: sent there when it runs */
        /* a verb of verbs (`slice create NAME`): its first argument names one of these
         * (NULL-name terminated), which has its own arguments and options; run is not used */
        const struct verb *sub;
};

/* The value of the verb's option called name: NULL when not given, "" for a flag given. */
const char *cli_opt(const struct cli *cli, const char *name);

/* The texts of --help that vgpuctl(8) shares (man.c). */
#define CLI_DESCRIPTION \
        "Manage GPU virtualization on this host: mediated devices, SR-IOV functions, software slices."
#define CLI_DAEMON_NOTE                                                                                      \
        "create, remove and apply are sent to the daemon when its socket accepts a connection (the daemon\n" \
        "checks that the caller is root or in its group, and records the change), run here when it does "    \
        "not\n"                                                                                              \
        "run. Every other command runs here: the reads (list, show, types, doctor) are fresh scans that\n"   \
        "need no privilege."

/* The verb table and the global options (main.c), for completion and the man page. */
const struct verb *cli_verbs(size_t *ret_n);
const struct verb *cli_find_verb(const char *name);
/* The command called name among a verb of verbs' (v->sub), or NULL. */
const struct verb *cli_find_sub(const struct verb *v, const char *name);
const struct cli_option *cli_global_options(void);

/* `vgpuctl __complete CWORD WORD...` (complete.c) and `vgpuctl __man` (man.c). */
int cli_complete(int argc, char **argv);
int cli_man(int argc, char **argv);

/* Print "vgpuctl: <message>" on stderr and return code (EXIT_FAILED or EXIT_USAGE). */
int cli_error(int code, const char *fmt, ...) _printf_(2, 3);
/* Same for a library failure. */
int cli_lib_error(const struct vgpu_error *err);

/* A struct out for stdout in the mode the command line asked for. */
struct out *cli_out(const struct cli *cli);
/* The same for tables (list, types): columns as wide as their widest cell, cut with "…" only
 * where stdout is a terminal narrower than the table. */
struct out *cli_out_table(const struct cli *cli);

/* Progress on stderr (progress.c): only when it is a terminal and --json was not given.
 * cli_progress_done() clears the line; call it before printing the result. */
bool cli_progress_wanted(const struct cli *cli);
void cli_progress(const struct cli *cli, const char *verb, size_t n, size_t n_steps, const char *fmt, ...)
        _printf_(5, 6);
void cli_progress_done(void);

/* `list`'s members (gpu.c), shared by the verb and `report` (which stores their JSON in the
 * bundle); the object printers themselves are in src/shared/print.h, shared with vgpud. */
void print_list(struct out *o, const struct vgpu_host *host);
/* The libvirt domain holding each instance (host->n_instances names, NULL where none), or NULL
 * when libvirt is not there to ask (assign.c). Free with vgpu_instance_domains_free(). */
void cli_list_domains(const struct vgpu_host *host, char ***ret_instances, char ***ret_gpus);

int verb_list(struct cli *cli);
int verb_create(struct cli *cli);
int verb_remove(struct cli *cli);
int verb_define(struct cli *cli);
int verb_undefine(struct cli *cli);
int verb_start(struct cli *cli);
int verb_stop(struct cli *cli);
int verb_vfs(struct cli *cli);
int verb_apply(struct cli *cli);
int verb_assert(struct cli *cli);
int verb_export(struct cli *cli);
int verb_show(struct cli *cli);
int verb_types(struct cli *cli);
int verb_doctor(struct cli *cli);
int verb_harden(struct cli *cli);
int verb_report(struct cli *cli);
int verb_sel(struct cli *cli);
/* The SEL as `sel` prints it (sel.c), for `report` too. */
struct vgpu_sel_entry;
void print_sel(struct out *o, const struct vgpu_sel_entry *e, size_t n);
int verb_diagnose(struct cli *cli);
int verb_assign(struct cli *cli);
int verb_detach(struct cli *cli);
int verb_xml(struct cli *cli);
int verb_fleet(struct cli *cli);

extern const struct cli_option types_options[];
extern const struct cli_option list_options[];
extern const struct cli_option create_options[];
extern const struct cli_option define_options[];
extern const struct cli_option undefine_options[];
extern const struct cli_option vfs_options[];
extern const struct verb slice_verbs[];
extern const struct cli_option apply_options[];
extern const struct cli_option assert_options[];
extern const struct cli_option doctor_options[];
extern const struct cli_option harden_options[];
extern const struct cli_option report_options[];
extern const struct cli_option assign_options[];
extern const struct cli_option detach_options[];
extern const struct cli_option xml_options[];
extern const struct cli_option fleet_options[];
