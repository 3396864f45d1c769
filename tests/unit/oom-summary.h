/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * oom-summary.h — libvgpu's results as text, for test-oom.c (oom-util.h): a run where an
 * allocation failed yet the call succeeded must describe its result exactly as the normal run
 * does, so every field a caller could read is printed, NULL strings as "(null)". Only what is
 * random (UUIDs made up for a count) or changes by itself is left out or numbered. For calls
 * that change the host, slice_state() is the part of the host they may change, as text.
 */
#pragma once

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "test-util.h"
#include "basic/macro.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"
#include "vgpu/doctor.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"
#include "vgpu/telemetry.h"

static inline const char *strnull(const char *s) {
        return s ? s : "(null)";
}

/* A summary being written: an in-memory stream (the test's own allocations never fail). It
 * writes to buf and size in place: open it where it stays. */
struct summary {
        char *buf;
        size_t size;
        FILE *f;
};

static inline void summary_open(struct summary *s) {
        *s = (struct summary){};
        s->f = open_memstream(&s->buf, &s->size);
        assert_non_null(s->f);
}

/* The text written; free() it. */
static inline char *summary_close(struct summary *s) {
        assert_int_equal(fclose(s->f), 0);
        return s->buf;
}

/* The summary of one result: dump(f, ...) into a new summary. */
#define SUMMARIZE(dump, ...)             \
        ({                               \
                struct summary _s;       \
                summary_open(&_s);       \
                dump(_s.f, __VA_ARGS__); \
                summary_close(&_s);      \
        })

static inline void dump_host(FILE *f, const struct vgpu_host *h) {
        fprintf(f, "kernel %s nvml %s\n", strnull(h->kernel_release), strnull(h->nvml_driver_version));
        for (size_t i = 0; i < h->n_gpus; i++) {
                const struct vgpu_gpu *g = &h->gpus[i];
                fprintf(f,
                        "gpu %s %04x:%04x %04x:%04x %06x [%s] [%s] driver %s group %d numa %d link %g/%g "
                        "x%d/x%d "
                        "sriov %d %u/%u physfn '%s' mdev %d vfio %d hwmon %d/%d vfs",
                        g->bdf, g->vendor_id, g->device_id, g->subsystem_vendor_id, g->subsystem_device_id,
                        g->class_code, strnull(g->vendor_name), strnull(g->device_name), strnull(g->driver),
                        g->iommu_group, g->numa_node, g->link.speed_current, g->link.speed_max,
                        g->link.width_current, g->link.width_max, g->sriov, g->num_vfs, g->total_vfs,
                        g->physfn, g->mdev_parent, g->nvidia_vfio, g->hwmon_temp_mc, g->hwmon_crit_mc);
                for (size_t j = 0; j < g->n_vfs; j++)
                        fprintf(f, " %s", g->vfs[j]);
                for (size_t j = 0; j < g->n_bars; j++)
                        fprintf(f, " bar%d %#llx+%#llx%s%s", g->bars[j].index,
                                (unsigned long long) g->bars[j].start, (unsigned long long) g->bars[j].size,
                                g->bars[j].is_64bit ? " 64" : "", g->bars[j].prefetchable ? " pf" : "");
                const struct vgpu_nvml_gpu *n = g->nvml;
                if (n)
                        fprintf(f,
                                " nvml [%s] [%s] %llu/%llu %lld t %d/%d/%d p %d/%d pm %d vm %d mig %d u "
                                "%d/%d r %d:%#llx pcie %d/%d x%d/x%d",
                                strnull(n->name), strnull(n->uuid), (unsigned long long) n->memory_total,
                                (unsigned long long) n->memory_used, (long long) n->memory_reserved,
                                n->temperature, n->temp_slowdown, n->temp_shutdown, n->power_mw,
                                n->power_limit_mw, n->persistence_mode, n->virtualization_mode, n->mig_mode,
                                n->utilization_gpu, n->utilization_memory, n->clocks_event_reasons_known,
                                (unsigned long long) n->clocks_event_reasons, n->pcie_gen_current,
                                n->pcie_gen_max, n->pcie_width_current, n->pcie_width_max);
                fputc('\n', f);
        }
        for (size_t i = 0; i < h->n_parents; i++) {
                const struct vgpu_parent *p = &h->parents[i];
                fprintf(f, "parent %s driver %s gpu %s gen %llu types %zu\n", strnull(p->name),
                        strnull(p->driver), p->gpu ? p->gpu->bdf : "-", (unsigned long long) p->generation,
                        p->n_types);
                for (size_t j = 0; j < p->n_types; j++) {
                        const struct vgpu_type *t = &p->types[j];
                        fprintf(f, "  type %s [%s] [%s] %s avail %lld fb %lld max %lld kind %d parent %s\n",
                                strnull(t->id), strnull(t->name), strnull(t->description),
                                strnull(t->device_api), (long long) t->available_instances,
                                (long long) t->framebuffer_bytes, (long long) t->max_instances, t->kind,
                                strnull(t->parent));
                }
        }
        for (size_t i = 0; i < h->n_instances; i++) {
                const struct vgpu_instance *in = &h->instances[i];
                fprintf(f, "instance '%s' %s %s group %d kind %d\n", in->uuid, strnull(in->parent),
                        strnull(in->type), in->iommu_group, in->kind);
        }
        for (size_t i = 0; i < h->n_groups; i++) {
                fprintf(f, "group %d:", h->groups[i].id);
                for (size_t j = 0; j < h->groups[i].n_members; j++)
                        fprintf(f, " %s %06x %s", h->groups[i].members[j].bdf,
                                h->groups[i].members[j].class_code, strnull(h->groups[i].members[j].driver));
                fputc('\n', f);
        }
}

static inline void dump_spec(FILE *f, const struct vgpu_mdev_spec *s, const char *uuid) {
        fprintf(f, "%s %s %s auto %d", uuid, strnull(s->parent), strnull(s->type), s->auto_start);
        for (size_t i = 0; i < s->n_attrs; i++)
                fprintf(f, " %s=%s", strnull(s->attrs[i].key), strnull(s->attrs[i].value));
}

static inline void dump_specs(FILE *f, const struct vgpu_mdev_spec *specs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                fputs("def ", f);
                dump_spec(f, &specs[i], specs[i].uuid);
                fputc('\n', f);
        }
}

/* A plan; the UUIDs made up for count entries are random, so they are numbered instead. */
static inline void dump_plan(FILE *f, const struct vgpu_plan *p) {
        char made[16][VGPU_UUID_MAX];
        size_t n_made = 0;
        for (size_t i = 0; i < p->n_actions; i++) {
                const struct vgpu_action *a = &p->actions[i];
                if (a->kind == VGPU_ACTION_CREATE && streq(a->detail, "count in the file") &&
                    a->spec.uuid[0] && n_made < ELEMENTSOF(made))
                        memcpy(made[n_made++], a->spec.uuid, VGPU_UUID_MAX);
        }
        for (size_t i = 0; i < p->n_actions; i++) {
                const struct vgpu_action *a = &p->actions[i];
                char uuid[VGPU_UUID_MAX + 8];
                snprintf(uuid, sizeof(uuid), "'%s'", a->spec.uuid);
                for (size_t k = 0; k < n_made; k++)
                        if (streq(made[k], a->spec.uuid))
                                snprintf(uuid, sizeof(uuid), "new%zu", k);
                fprintf(f, "%s ", vgpu_action_kind_to_string(a->kind));
                dump_spec(f, &a->spec, uuid);
                fprintf(f, " vfio %d vfs %u<-%u (%s)", a->vendor_vfio, a->vfs, a->old_vfs,
                        strnull(a->detail));
                if (a->kind >= VGPU_ACTION_SLICE_REMOVE)
                        fprintf(f, " slice %s %s %llu %u %s %s", a->slice.name, a->slice.gpu,
                                (unsigned long long) a->slice.memory, a->slice.share,
                                strnull(vgpu_slice_policy_to_string(a->slice.policy)),
                                strnull(vgpu_slice_scrub_to_string(a->slice.scrub)));
                fputc('\n', f);
        }
        fprintf(f, "notes: %s\n", strnull(p->notes));
}

static inline void dump_report(FILE *f, const struct vgpu_doctor_report *r) {
        for (size_t i = 0; i < r->n_results; i++) {
                const struct vgpu_check_result *c = &r->results[i];
                fprintf(f, "%s %s %s: %s\n  evidence: %s\n  remedy: %s\n", c->id, strnull(c->subject),
                        vgpu_check_status_to_string(c->status), strnull(c->summary), strnull(c->evidence),
                        strnull(c->remedy));
        }
}

static inline void dump_slices(FILE *f, const struct vgpu_slice_status *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                fprintf(f, "slice %s %s %s %s %u %llu\n", s[i].spec.name, s[i].spec.gpu,
                        strnull(vgpu_slice_policy_to_string(s[i].spec.policy)),
                        strnull(vgpu_slice_scrub_to_string(s[i].spec.scrub)), s[i].spec.share,
                        (unsigned long long) s[i].spec.memory);
}

static inline void dump_config(FILE *f, const struct vgpu_config *c) {
        fprintf(f, "source %s slices %d\n", c->source, c->has_slices);
        for (size_t i = 0; i < c->n_gpus; i++) {
                const struct vgpu_config_gpu *g = &c->gpus[i];
                fprintf(f, "gpu %d %s vfs %d policy %d %d/%d/%d line %d\n", g->select, strnull(g->value),
                        g->vfs, g->has_policy, g->policy.scheduler, g->policy.timeslice_ms,
                        g->policy.frame_rate_limit, g->line);
                for (size_t j = 0; j < g->n_devices; j++) {
                        const struct vgpu_config_device *d = &g->devices[j];
                        fprintf(f, "  device %s %u auto %d line %d", strnull(d->type), d->count,
                                d->auto_start, d->line);
                        for (size_t k = 0; k < d->n_uuids; k++)
                                fprintf(f, " %s", d->uuids[k]);
                        for (size_t k = 0; k < d->n_attrs; k++)
                                fprintf(f, " %s=%s", strnull(d->attrs[k].key), strnull(d->attrs[k].value));
                        fputc('\n', f);
                }
        }
        for (size_t i = 0; i < c->n_slices; i++)
                fprintf(f, "slice %s %s %llu %u %s %s\n", c->slices[i].spec.name, c->slices[i].spec.gpu,
                        (unsigned long long) c->slices[i].spec.memory, c->slices[i].spec.share,
                        strnull(vgpu_slice_policy_to_string(c->slices[i].spec.policy)),
                        strnull(vgpu_slice_scrub_to_string(c->slices[i].spec.scrub)));
}

static inline void dump_telemetry(FILE *f, const struct vgpu_telemetry *t) {
        for (size_t i = 0; i < t->n_gpus; i++) {
                const struct vgpu_gpu_telemetry *g = &t->gpus[i];
                fprintf(f,
                        "%s [%s] [%s] %d C (%s) slowdown %d power %lld/%lld mem %lld/%lld/%lld util %d/%d "
                        "link x%d/x%d %s "
                        "degraded %d thermal %s\n",
                        g->bdf, strnull(g->model), strnull(g->uuid), g->temperature_c,
                        strnull(g->temperature_source), g->slowdown_c, (long long) g->power_mw,
                        (long long) g->power_limit_mw, (long long) g->memory_total,
                        (long long) g->memory_used, (long long) g->memory_reserved, g->utilization_gpu,
                        g->utilization_memory, g->link.width_current, g->link.width_max,
                        strnull(g->link_source), g->link_degraded, vgpu_thermal_state_to_string(g->thermal));
        }
}

/* The names in a host directory, sorted (tmpfs lists newest first), each passed to fn. */
static inline void for_each_name(const char *dir,
                                 void (*fn)(const char *path, const char *name, void *userdata),
                                 void *userdata) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s%s", getenv("VGPU_ROOT"), dir);
        struct dirent **names = NULL;
        int n = scandir(p, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.')
                        fn(p, names[i]->d_name, userdata);
                free(names[i]);
        }
        free(names);
}

static inline void print_name(const char *path, const char *name, void *userdata) {
        (void) path;
        fprintf(userdata, "%s\n", name);
}

/* The slices, records and CDI spec as they are: what a slice call must leave alone when it fails. */
static inline char *slice_state(void) {
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        struct vgpu_error err = {};
        if (vgpu_slice_list(&s, &n, &err) < 0)
                fail_msg("%s", err.message);
        struct summary sum;
        summary_open(&sum);
        dump_slices(sum.f, s, n);
        free(s);
        for_each_name(VGPU_SLICE_RECORDS, print_name, sum.f);
        char p[PATH_MAX], text[65536];
        snprintf(p, sizeof(p), "%s" VGPU_CDI_SPEC, getenv("VGPU_ROOT"));
        FILE *cdi = fopen(p, "re");
        if (cdi) {
                fwrite(text, 1, fread(text, 1, sizeof(text), cdi), sum.f);
                fclose(cdi);
        }
        return summary_close(&sum);
}
