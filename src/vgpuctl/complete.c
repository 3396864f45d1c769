/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * complete.c — `vgpuctl __complete CWORD WORD...`: the candidates for word CWORD of the command
 * line WORD... (WORD 0 is the program), one per line, for the bash and zsh completion scripts
 * (data/completion). Verbs and options come from the verb table, values from this host:
 * parents, types, UUIDs, GPUs and slices through libvgpu, libvirt domains from `virsh`. So the
 * scripts never list a verb or option of their own, and cannot fall behind the program.
 * A line "@file" asks the shell for file names instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"
#include "vgpuctl.h"

struct completion {
        const char *prefix; /* the word being completed, as typed so far */
};

static void candidate(const struct completion *c, const char *s) {
        if (s && *s && strncmp(s, c->prefix, strlen(c->prefix)) == 0)
                printf("%s\n", s);
}

static struct vgpu_host *scan(unsigned flags) {
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        /* a host that cannot be read completes nothing: never an error message in the prompt */
        if (vgpu_host_scan(flags, &host, &err) < 0)
                return NULL;
        return host;
}

static void parents(const struct completion *c) {
        struct vgpu_host *host = scan(VGPU_SCAN_PARENTS);
        for (size_t i = 0; host && i < host->n_parents; i++)
                candidate(c, host->parents[i].name);
        vgpu_host_free(host);
}

/* The types of `parent` (as typed: "3b:00.0" too), or of every parent. */
static void types(const struct completion *c, const char *parent) {
        struct vgpu_host *host = scan(VGPU_SCAN_TYPES);
        char bdf[VGPU_BDF_MAX];
        if (parent && vgpu_bdf_normalize(parent, bdf) == 0)
                parent = bdf;
        for (size_t i = 0; host && i < host->n_parents; i++) {
                const struct vgpu_parent *p = &host->parents[i];
                if (parent && strcmp(p->name, parent) != 0)
                        continue;
                for (size_t j = 0; j < p->n_types; j++) {
                        /* the same id on many parents is offered once */
                        bool seen = false;
                        for (size_t k = 0; k < i && !seen && !parent; k++)
                                for (size_t l = 0; l < host->parents[k].n_types && !seen; l++)
                                        seen = strcmp(host->parents[k].types[l].id, p->types[j].id) == 0;
                        if (!seen)
                                candidate(c, p->types[j].id);
                }
        }
        vgpu_host_free(host);
}

enum which {
        RUNNING = 1 << 0, /* running vGPUs */
        DEFINED = 1 << 1, /* definitions (those running too, unless STOPPED) */
        STOPPED = 1 << 2, /* with DEFINED: only definitions not running */
        VF_BDFS = 1 << 3, /* with RUNNING: vendor-VFIO VFs, by their BDF */
};

static void instances(const struct completion *c, unsigned which) {
        struct vgpu_host *host = scan(VGPU_SCAN_INSTANCES);
        for (size_t i = 0; host && (which & RUNNING) && i < host->n_instances; i++)
                candidate(c, host->instances[i].uuid[0] ? host->instances[i].uuid
                             : which & VF_BDFS          ? host->instances[i].parent
                                                        : NULL);
        struct vgpu_mdev_spec *specs = NULL;
        size_t n = 0;
        struct vgpu_error err = {};
        if ((which & DEFINED) && vgpu_mdev_definitions(&specs, &n, NULL, &err) >= 0)
                for (size_t i = 0; i < n; i++) {
                        /* running ones are listed already, or (STOPPED) not wanted */
                        bool runs = false;
                        for (size_t j = 0;
                             host && (which & (RUNNING | STOPPED)) && j < host->n_instances && !runs; j++)
                                runs = strcasecmp(host->instances[j].uuid, specs[i].uuid) == 0;
                        if (!runs)
                                candidate(c, specs[i].uuid);
                }
        vgpu_mdev_specs_free(specs, n);
        vgpu_host_free(host);
}

/* GPUs by BDF; sriov: only physical functions that can enable VFs. */
static void gpus(const struct completion *c, bool sriov) {
        struct vgpu_host *host = scan(0);
        for (size_t i = 0; host && i < host->n_gpus; i++)
                if (!sriov || host->gpus[i].sriov)
                        candidate(c, host->gpus[i].bdf);
        vgpu_host_free(host);
}

static void slices(const struct completion *c) {
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        struct vgpu_error err = {};
        if (vgpu_slice_list(&s, &n, &err) >= 0)
                for (size_t i = 0; i < n; i++)
                        candidate(c, s[i].spec.name);
        free(s);
}

/* libvirt's domains, running or not, when virsh is there to ask (it is what admins type). */
static void domains(const struct completion *c, const char *uri) {
        char cmd[512];
        if (uri && strchr(uri, '\''))
                return;
        snprintf(cmd, sizeof(cmd), "virsh %s%s%s list --all --name 2>/dev/null", uri ? "-c '" : "",
                 uri ? uri : "", uri ? "'" : "");
        FILE *f = popen(cmd, "r");
        if (!f)
                return;
        char line[256];
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = '\0';
                candidate(c, line);
        }
        pclose(f);
}

static void words(const struct completion *c, const char *const *list) {
        for (; *list; list++)
                candidate(c, *list);
}

/* The value of --name (or its short form) given earlier on the line, or NULL. */
static const char *option_value(int argc, char **argv, int cword, const struct cli_option *opts,
                                const char *name) {
        for (int i = 1; i + 1 < argc && i + 1 != cword; i++) {
                for (const struct cli_option *o = opts; o && o->name; o++) {
                        if (strcmp(o->name, name) != 0)
                                continue;
                        char s[3] = { '-', o->short_name, 0 };
                        if ((strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0) ||
                            (o->short_name && strcmp(argv[i], s) == 0))
                                return argv[i + 1];
                }
        }
        return NULL;
}

/* The option spelled `word` ("--type", "-t") among opts, or NULL. */
static const struct cli_option *find_option(const struct cli_option *opts, const char *word) {
        for (const struct cli_option *o = opts; o && o->name; o++)
                if ((strncmp(word, "--", 2) == 0 && strcmp(word + 2, o->name) == 0) ||
                    (o->short_name && word[0] == '-' && word[1] == o->short_name && word[2] == '\0'))
                        return o;
        return NULL;
}

static void options(const struct completion *c, const struct cli_option *opts) {
        for (const struct cli_option *o = opts; o && o->name; o++) {
                char s[64];
                snprintf(s, sizeof(s), "--%s", o->name);
                candidate(c, s);
        }
}

/* The values an option's metavar stands for. */
static void option_values(const struct completion *c, const struct verb *v, const struct cli_option *o,
                          int argc, char **argv, int cword) {
        const char *arg = o->arg;
        if (!strcmp(arg, "PARENT"))
                parents(c);
        else if (!strcmp(arg, "TYPE"))
                types(c, option_value(argc, argv, cword, v->options, "parent"));
        else if (!strcmp(arg, "UUID"))
                instances(c, RUNNING | DEFINED);
        else if (!strcmp(arg, "BDF"))
                gpus(c, false);
        else if (!strcmp(arg, "FILE"))
                printf("@file\n");
        else if (!strcmp(o->name, "domain"))
                domains(c, option_value(argc, argv, cword, v->options, "connect"));
        else if (!strcmp(arg, "POLICY"))
                words(c, (const char *const[]){ "best-effort", "equal-share", "fixed-share", NULL });
        else if (!strcmp(arg, "WHEN"))
                words(c, (const char *const[]){ "on-free", "on-exit", "off", NULL });
}

/* Positional argument number `pos` (0-based) of verb v, by the names in its usage ("UUID|BDF"). */
static void positional(const struct completion *c, const struct verb *v, int pos) {
        if (!strcmp(v->name, "fleet")) {
                if (pos == 0)
                        words(c, (const char *const[]){ "hosts", "gpus", "sessions", "place", "release",
                                                        "cordon", "uncordon", "drain", "explain", NULL });
                return;
        }
        if (pos >= v->max_args)
                return;
        /* the pos-th word of the usage string */
        char usage[64];
        snprintf(usage, sizeof(usage), "%s", v->args);
        char *save = NULL, *w = strtok_r(usage, " []", &save);
        for (int i = 0; w && i < pos; i++)
                w = strtok_r(NULL, " []", &save);
        if (!w)
                return;
        if (!strcmp(w, "PARENT"))
                parents(c);
        else if (!strcmp(w, "UUID|BDF"))
                instances(c, RUNNING | VF_BDFS);
        else if (!strcmp(w, "UUID"))
                /* start: what is defined and not running; stop: what runs; undefine: what is defined */
                instances(c, !strcmp(v->name, "start")  ? DEFINED | STOPPED
                             : !strcmp(v->name, "stop") ? RUNNING
                                                        : DEFINED);
        else if (!strcmp(w, "BDF"))
                gpus(c, !strcmp(v->name, "vfs"));
        else if (!strcmp(w, "NAME") && strcmp(v->name, "create") != 0)
                slices(c); /* slice show|remove: the slices there are; create: a new name */
}

int cli_complete(int argc, char **argv) {
        if (argc < 2)
                return EXIT_USAGE;
        int cword = atoi(argv[0]);
        argc--, argv++; /* argv[0] is now the program, argv[cword] the word completed */
        if (cword < 1 || cword > argc)
                return EXIT_USAGE;
        struct completion c = { .prefix = cword < argc ? argv[cword] : "" };
        const struct cli_option *globals = cli_global_options();

        /* the verb: the first word that is not an option (global options take no value) */
        const struct verb *v = NULL;
        int verb_at = 0;
        for (int i = 1; i < cword && !v; i++)
                if (argv[i][0] != '-') {
                        v = cli_find_verb(argv[i]);
                        verb_at = i;
                        if (!v)
                                return EXIT_OK; /* an unknown verb: nothing sensible follows */
                }
        if (!v) {
                if (c.prefix[0] == '-')
                        options(&c, globals);
                else {
                        size_t n;
                        const struct verb *all = cli_verbs(&n);
                        for (size_t i = 0; i < n; i++)
                                candidate(&c, all[i].name);
                }
                fflush(stdout);
                return EXIT_OK;
        }

        /* a verb of verbs (slice): its command comes first, then the command's own words */
        if (v->sub) {
                const struct verb *s = NULL;
                for (int i = verb_at + 1; i < cword && !s; i++)
                        if (argv[i][0] != '-') {
                                if (!(s = cli_find_sub(v, argv[i])))
                                        return EXIT_OK;
                                verb_at = i;
                        }
                if (!s) {
                        if (c.prefix[0] == '-')
                                options(&c, globals);
                        else
                                for (s = v->sub; s->name; s++)
                                        candidate(&c, s->name);
                        fflush(stdout);
                        return EXIT_OK;
                }
                v = s;
        }

        /* after the verb: the value of an option, an option, or a positional argument */
        const struct cli_option *prev = find_option(v->options, argv[cword - 1]);
        if (cword - 1 > verb_at && prev && prev->arg)
                option_values(&c, v, prev, argc, argv, cword);
        else if (c.prefix[0] == '-') {
                options(&c, v->options);
                options(&c, globals);
        } else {
                int n_args = 0;
                for (int i = verb_at + 1; i < cword; i++) {
                        const struct cli_option *o = find_option(v->options, argv[i]);
                        if (o && o->arg)
                                i++; /* its value */
                        else if (argv[i][0] != '-')
                                n_args++;
                }
                positional(&c, v, n_args);
        }
        fflush(stdout);
        return EXIT_OK;
}
