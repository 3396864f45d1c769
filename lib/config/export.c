/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * export.c — the host's current carve-up written as a host.yaml that `apply` reproduces:
 * one 'gpus' item per parent holding instances (or with VFs enabled), devices grouped by type
 * with their UUIDs, so applying the export keeps every running vGPU's identity.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "vgpu/config.h"

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

static const struct vgpu_mdev_spec *definition(const struct vgpu_mdev_spec *defs, size_t n, const char *uuid) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(defs[i].uuid, uuid) == 0)
                        return &defs[i];
        return NULL;
}

static bool seen_type(const struct vgpu_host *host, size_t upto, const char *parent, const char *type) {
        for (size_t i = 0; i < upto; i++)
                if (strcmp(host->instances[i].parent, parent) == 0 && streq_ptr(host->instances[i].type, type))
                        return true;
        return false;
}

static void export_parent(FILE *f, const struct vgpu_host *host, const char *parent, const struct vgpu_mdev_spec *defs, size_t n_defs) {
        fputs("  - parent: ", f);
        quoted(f, parent);
        fputc('\n', f);
        bool any = false;
        for (size_t i = 0; i < host->n_instances; i++) {
                const struct vgpu_instance *in = &host->instances[i];
                if (strcmp(in->parent, parent) != 0 || !in->type || seen_type(host, i, parent, in->type))
                        continue;
                if (!any)
                        fputs("    devices:\n", f);
                any = true;
                unsigned count = 0;
                for (size_t j = i; j < host->n_instances; j++)
                        count += strcmp(host->instances[j].parent, parent) == 0 && streq(host->instances[j].type, in->type);
                fputs("      - type: ", f);
                quoted(f, in->type);
                fprintf(f, "\n        count: %u\n", count);
                if (in->kind == VGPU_TYPE_NVIDIA_VFIO)
                        continue;       /* vendor-VFIO vGPUs have no UUID */
                fputs("        uuids:\n", f);
                const struct vgpu_mdev_spec *d = NULL;
                for (size_t j = i; j < host->n_instances; j++)
                        if (strcmp(host->instances[j].parent, parent) == 0 && streq(host->instances[j].type, in->type)) {
                                fprintf(f, "          - \"%s\"\n", host->instances[j].uuid);
                                if (!d)
                                        d = definition(defs, n_defs, host->instances[j].uuid);
                        }
                /* attributes and start mode from the first one's definition, if it has one */
                if (d && !d->auto_start)
                        fputs("        auto-start: false\n", f);
                if (d && d->n_attrs) {
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
}

_public_ int vgpu_config_export(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs, char **ret, struct vgpu_error *err) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        fputs("# vgpuctl host configuration, exported from the running host.\n"
              "# Apply with: vgpuctl apply -f FILE (instances keep these UUIDs).\n"
              "version: 1\ngpus:", f);
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
                export_parent(f, host, parent, defs, n_defs);
        }
        if (!any)
                fputs(" []\n", f);
        if (fclose(f) != 0) {
                free(text);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        *ret = text;
        return 0;
}
