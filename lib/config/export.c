/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * export.c — the host's current carve-up written as a host.yaml that `apply` reproduces:
 * one 'gpus' item per parent holding instances (or with VFs enabled), devices grouped by type
 * with their UUIDs, so applying the export keeps every running vGPU's identity; and the
 * software slices as a 'slices' list (quota in bytes, so it reads back exactly).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "vgpu/config.h"
#include "vgpu/slice.h"

/* YAML double-quoted scalar: JSON's escaping is valid there. */
static void quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static const struct vgpu_mdev_spec *definition(const struct vgpu_mdev_spec *defs, size_t n, const char *uuid,
                                               const char *parent) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(defs[i].uuid, uuid) == 0 && strcmp(defs[i].parent, parent) == 0)
                        return &defs[i];
        return NULL;
}

/* Do two instances go into one 'devices' entry? Same type, and the same definition: none (a
 * transient 'create'), or the same start mode and attributes. An entry says one of these for all
 * its UUIDs, so grouping otherwise would make the export differ from the host it came from. */
static bool same_entry(const struct vgpu_instance *a, const struct vgpu_mdev_spec *da,
                       const struct vgpu_instance *b, const struct vgpu_mdev_spec *db) {
        if (strcmp(a->parent, b->parent) != 0 || !streq_ptr(a->type, b->type) || !da != !db)
                return false;
        if (!da)
                return true;
        if (da->auto_start != db->auto_start || da->n_attrs != db->n_attrs)
                return false;
        for (size_t k = 0; k < da->n_attrs; k++)
                if (strcmp(da->attrs[k].key, db->attrs[k].key) != 0 ||
                    strcmp(da->attrs[k].value, db->attrs[k].value) != 0)
                        return false;
        return true;
}

static void export_definition_fields(FILE *f, const struct vgpu_mdev_spec *d) {
        if (!d->auto_start)
                fputs("        auto-start: false\n", f);
        if (d->n_attrs) {
                fputs("        attrs:\n", f);
                for (size_t k = 0; k < d->n_attrs; k++) {
                        fputs("          - ", f);
                        quoted(f, d->attrs[k].key);
                        fputs(": ", f);
                        quoted(f, d->attrs[k].value);
                        fputc('\n', f);
                }
        }
}

static bool runs(const struct vgpu_host *host, const char *uuid) {
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].uuid, uuid) == 0)
                        return true;
        return false;
}

static bool same_definition(const struct vgpu_mdev_spec *a, const struct vgpu_mdev_spec *b) {
        struct vgpu_instance ia = { .parent = a->parent, .type = a->type },
                             ib = { .parent = b->parent, .type = b->type };
        return same_entry(&ia, a, &ib, b);
}

/* Definitions of parent that do not run (defined, or stopped): entries with 'running: false',
 * grouped as instances are, so that apply of the export neither starts nor undefines them. */
static void export_stopped(FILE *f, const char *parent, const struct vgpu_mdev_spec *defs, size_t n_defs,
                           const bool *stopped, bool *any) {
        for (size_t i = 0; i < n_defs; i++) {
                const struct vgpu_mdev_spec *d = &defs[i];
                if (strcmp(d->parent, parent) != 0 || !stopped[i])
                        continue;
                bool first = true;
                for (size_t j = 0; j < i && first; j++)
                        first = !(strcmp(defs[j].parent, parent) == 0 && stopped[j] &&
                                  same_definition(d, &defs[j]));
                if (!first)
                        continue;
                if (!*any)
                        fputs("    devices:\n", f);
                *any = true;
                unsigned count = 0;
                for (size_t j = i; j < n_defs; j++)
                        count += strcmp(defs[j].parent, parent) == 0 && stopped[j] &&
                                 same_definition(d, &defs[j]);
                fputs("      - type: ", f);
                quoted(f, d->type);
                fprintf(f, "\n        count: %u\n        running: false\n        uuids:\n", count);
                for (size_t j = i; j < n_defs; j++)
                        if (strcmp(defs[j].parent, parent) == 0 && stopped[j] && same_definition(d, &defs[j]))
                                fprintf(f, "          - \"%s\"\n", defs[j].uuid);
                export_definition_fields(f, d);
        }
}

/* def_of[i]: the definition of host->instances[i] on its parent, or NULL */
static void export_parent(FILE *f, const struct vgpu_host *host, const char *parent,
                          const struct vgpu_mdev_spec *const *def_of, const struct vgpu_mdev_spec *defs,
                          size_t n_defs, const bool *stopped) {
        fputs("  - parent: ", f);
        quoted(f, parent);
        fputc('\n', f);
        bool any = false;
        for (size_t i = 0; i < host->n_instances; i++) {
                const struct vgpu_instance *in = &host->instances[i];
                if (strcmp(in->parent, parent) != 0 || !in->type)
                        continue;
                const struct vgpu_mdev_spec *d = def_of[i];
                bool first = true;
                for (size_t j = 0; j < i && first; j++)
                        first = !same_entry(in, d, &host->instances[j], def_of[j]);
                if (!first)
                        continue; /* written with the first of its entry */
                if (!any)
                        fputs("    devices:\n", f);
                any = true;
                unsigned count = 0;
                for (size_t j = i; j < host->n_instances; j++)
                        count += same_entry(in, d, &host->instances[j], def_of[j]);
                fputs("      - type: ", f);
                quoted(f, in->type);
                fprintf(f, "\n        count: %u\n", count);
                if (in->kind == VGPU_TYPE_NVIDIA_VFIO)
                        continue; /* vendor-VFIO vGPUs have no UUID, nor a definition */
                fputs("        uuids:\n", f);
                for (size_t j = i; j < host->n_instances; j++)
                        if (same_entry(in, d, &host->instances[j], def_of[j]))
                                fprintf(f, "          - \"%s\"\n", host->instances[j].uuid);
                if (!d) {
                        fputs("        persistent: false\n", f); /* made by 'create' without --persist */
                        continue;
                }
                export_definition_fields(f, d);
        }
        export_stopped(f, parent, defs, n_defs, stopped, &any);
}

/* The slices as a 'slices' list, in the fields and defaults of config-slices.c. */
static void export_slices(FILE *f, const struct vgpu_slice_status *slices, size_t n) {
        fputs(n ? "slices:\n" : "slices: []\n", f);
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_slice_spec *s = &slices[i].spec;
                fputs("  - name: ", f);
                quoted(f, s->name);
                fprintf(f, "\n    gpu: \"%s\"\n", s->gpu);
                /* in the largest unit that says it exactly, as an admin would write it */
                static const char units[] = "TGMK";
                for (int u = 0; s->memory && u <= 4; u++) {
                        unsigned shift = (unsigned) (40 - 10 * u);
                        if (u == 4)
                                fprintf(f, "    memory: %" PRIu64 "\n", s->memory);
                        else if (s->memory % (UINT64_C(1) << shift) == 0) {
                                fprintf(f, "    memory: %" PRIu64 "%c\n", s->memory >> shift, units[u]);
                                break;
                        }
                }
                if (s->share)
                        fprintf(f, "    share: %u%%\n", s->share);
                fprintf(f, "    policy: %s\n    scrub: %s\n", vgpu_slice_policy_to_string(s->policy),
                        vgpu_slice_scrub_to_string(s->scrub));
        }
}

static int export_text(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                       const struct vgpu_slice_status *slices, size_t n_slices, bool with_slices, char **ret,
                       struct vgpu_error *err) {
        char *text = NULL;
        size_t size = 0;
        _cleanup_free_ const struct vgpu_mdev_spec **def_of = calloc(host->n_instances + 1, sizeof(*def_of));
        if (!def_of)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < host->n_instances; i++)
                if (host->instances[i].uuid[0])
                        def_of[i] =
                                definition(defs, n_defs, host->instances[i].uuid, host->instances[i].parent);
        /* definitions whose UUID runs nowhere: exported with 'running: false' */
        _cleanup_free_ bool *stopped = calloc(n_defs + 1, sizeof(*stopped));
        if (!stopped)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_defs; i++)
                stopped[i] = !runs(host, defs[i].uuid);
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        fputs("# vgpuctl host configuration, exported from the running host.\n"
              "# Apply with: vgpuctl apply -f FILE (instances keep these UUIDs).\n"
              "version: 1\ngpus:",
              f);
        bool any = false;
        /* PFs with VFs enabled first: VFs must exist before instances on them */
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (!g->sriov || g->num_vfs == 0)
                        continue;
                fprintf(f, "%s  - bdf: \"%s\"\n    vfs: %u\n", any ? "" : "\n", g->bdf, g->num_vfs);
                any = true;
        }
        for (size_t i = 0; i < host->n_instances; i++) {
                const char *parent = host->instances[i].parent;
                bool first = true;
                for (size_t j = 0; j < i && first; j++)
                        first = strcmp(host->instances[j].parent, parent) != 0;
                if (!first)
                        continue;
                if (!any)
                        fputc('\n', f);
                any = true;
                export_parent(f, host, parent, def_of, defs, n_defs, stopped);
        }
        if (!any)
                fputs(" []\n", f);
        if (with_slices)
                export_slices(f, slices, n_slices);
        if (fclose(f) != 0) {
                free(text);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        *ret = text;
        return 0;
}

_public_ int vgpu_config_export(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs,
                                size_t n_defs, char **ret, struct vgpu_error *err) {
        return export_text(host, defs, n_defs, NULL, 0, false, ret, err);
}

_public_ int vgpu_config_export_slices(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs,
                                       size_t n_defs, const struct vgpu_slice_status *slices, size_t n_slices,
                                       char **ret, struct vgpu_error *err) {
        return export_text(host, defs, n_defs, slices, n_slices, true, ret, err);
}
