/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slices.c — software slices in the plan: host.yaml's 'slices' against the slices that exist.
 *
 * Only a file with a 'slices' key manages slices (an older host.yaml without one never removes
 * the slices made with `vgpuctl slice create`); such a file manages all of them: a slice it does
 * not list is removed, like an instance on a managed parent. A slice that matches is kept, usage
 * counters and all. The shim reads quota, policy, share and scrub without locks from inside
 * running CUDA calls, so none of them changes in place: a slice that differs is removed and
 * created again, and only while no process uses it — otherwise the plan is refused with the
 * reason, as instance removals are while a VM holds the VFIO group. Slice actions come after
 * every instance action, removals first, so a recreated slice's share is free again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "plan-internal.h"
#include "slice/manage.h"
#include "slice/slice-shm.h"

static struct vgpu_action *add(struct vgpu_plan *plan, size_t *allocated, enum vgpu_action_kind kind,
                               const struct vgpu_slice_spec *s, const char *detail) {
        if (!GREEDY_REALLOC(plan->actions, *allocated, plan->n_actions + 1))
                return NULL;
        struct vgpu_action *a = &plan->actions[plan->n_actions++];
        *a = (struct vgpu_action){
                .kind = kind, .slice = *s, .spec = { .parent = strdup(s->gpu) }, .detail = strdup(detail)
        };
        return a->spec.parent && a->detail ? a : NULL;
}

static void size_text(char *buf, size_t size, uint64_t bytes) {
        if (!bytes)
                snprintf(buf, size, "unlimited");
        else if (bytes % (1ULL << 20) == 0)
                snprintf(buf, size, "%" PRIu64 " MiB", bytes >> 20);
        else
                snprintf(buf, size, "%" PRIu64 " bytes", bytes);
}

/* What differs between the slice and the file, in words; "" when nothing does. */
static void difference(char *buf, size_t size, const struct vgpu_slice_spec *have,
                       const struct vgpu_slice_spec *want) {
        char a[32], b[32];
        buf[0] = '\0';
        if (strcmp(have->gpu, want->gpu) != 0)
                snprintf(buf, size, "GPU %s -> %s", have->gpu, want->gpu);
        else if (have->memory != want->memory) {
                size_text(a, sizeof(a), have->memory);
                size_text(b, sizeof(b), want->memory);
                snprintf(buf, size, "memory %s -> %s", a, b);
        } else if (have->policy != want->policy)
                snprintf(buf, size, "policy %s -> %s", vgpu_slice_policy_to_string(have->policy),
                         vgpu_slice_policy_to_string(want->policy));
        else if (have->share != want->share)
                snprintf(buf, size, "share %u%% -> %u%%", have->share, want->share);
        else if (have->scrub != want->scrub)
                snprintf(buf, size, "scrub %s -> %s", vgpu_slice_scrub_to_string(have->scrub),
                         vgpu_slice_scrub_to_string(want->scrub));
}

/* Can slice s go on its GPU, which would then hold count slices whose quotas add up to quotas?
 * where: "FILE:LINE:COL: " for an item of host.yaml, "" for `vgpuctl slice create`: apart from
 * it both say the same. */
static int check_gpu(const struct vgpu_host *host, const struct vgpu_slice_spec *s, unsigned count,
                     uint64_t quotas, const char *where, struct vgpu_error *err) {
        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, s->gpu);
        if (!g || !vgpu_gpu_is_nvidia_pf(g))
                return vgpu_error_set(err, -ENODEV, "%sslice %s: no NVIDIA GPU (physical function) at %s",
                                      where, s->name, s->gpu);
        if (slice_gpu_refusal(g))
                return vgpu_error_set(err, -EBUSY, "%sslice %s: %s: %s", where, s->name, s->gpu,
                                      slice_gpu_refusal(g));
        uint64_t total = g->nvml ? g->nvml->memory_total : 0;
        if (count > SLICE_MAX)
                return vgpu_error_set(err, -ENOSPC, "%sslice %s: %s holds at most %u slices", where, s->name,
                                      s->gpu, SLICE_MAX);
        if (total && quotas > total)
                return vgpu_error_set(err, -ENOSPC,
                                      "%s%sthe quotas of the slices on %s add up to %" PRIu64
                                      " MiB with slice %s; the GPU has %" PRIu64 " MiB",
                                      where, where[0] ? "field 'memory': " : "", s->gpu, quotas >> 20,
                                      s->name, total >> 20);
        return 0;
}

/* The host's side of the file's slices: each GPU an NVIDIA physical function, with room for
 * the slices and memory for their quotas together (when the GPU's memory is known: the
 * snapshot has NVML readings, which scan_and_plan asks for when the file has slices). */
static int check_gpus(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_error *err) {
        int r = 0;
        for (size_t i = 0; r >= 0 && i < cfg->n_slices; i++) {
                const struct vgpu_config_slice *c = &cfg->slices[i];
                uint64_t quotas = 0;
                unsigned count = 0;
                for (size_t j = 0; j <= i; j++)
                        if (streq(cfg->slices[j].spec.gpu, c->spec.gpu)) {
                                quotas += cfg->slices[j].spec.memory;
                                count++;
                        }
                char where[4096 + 32];
                snprintf(where, sizeof(where), "%s:%d:%d: ", cfg->source, c->line, c->column);
                r = check_gpu(host, &c->spec, count, quotas, where, err);
        }
        return r;
}

static struct vgpu_plan *plan_new(void) {
        return calloc(1, sizeof(struct vgpu_plan));
}

int plan_slice_create(const struct vgpu_slice_spec *spec, struct vgpu_plan **ret, struct vgpu_error *err) {
        struct vgpu_slice_spec want;
        int r = slice_spec_resolve(spec, &want, err);
        if (r < 0)
                return r;
        _cleanup_free_ struct vgpu_slice_status *live = NULL;
        size_t n_live = 0;
        if ((r = vgpu_slice_list(&live, &n_live, err)) < 0)
                return r;
        /* the GPU with the slices it holds besides this one */
        const struct vgpu_slice_spec *have = NULL;
        uint64_t quotas = want.memory;
        unsigned count = 1;
        for (size_t i = 0; i < n_live; i++)
                if (streq(live[i].spec.name, want.name))
                        have = &live[i].spec;
                else if (streq(live[i].spec.gpu, want.gpu)) {
                        quotas += live[i].spec.memory;
                        count++;
                }
        struct vgpu_host *host;
        if ((r = vgpu_host_scan(VGPU_SCAN_NVML, &host, err)) < 0)
                return r;
        r = check_gpu(host, &want, count, quotas, "", err);
        vgpu_host_free(host);
        if (r < 0)
                return r;
        /* a name is host-wide; apply recreates a slice that differs, a create refuses to */
        char why[160] = "";
        if (have && !streq(have->gpu, want.gpu))
                return vgpu_error_set(err, -EEXIST, "slice %s already exists on %s", want.name, have->gpu);
        if (have)
                difference(why, sizeof(why), have, &want);
        if (why[0])
                return vgpu_error_set(err, -EEXIST,
                                      "slice %s exists on %s with other settings (%s); remove it first",
                                      want.name, want.gpu, why);
        struct vgpu_plan *plan = plan_new();
        size_t allocated = 0;
        if (!plan || (!have && !add(plan, &allocated, VGPU_ACTION_SLICE_CREATE, &want, "not created yet"))) {
                vgpu_plan_free(plan);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        *ret = plan;
        return 0;
}

int plan_slice_destroy(const char *name, struct vgpu_plan **ret, struct vgpu_error *err) {
        struct slice_file f;
        struct vgpu_error why = {};
        int r = slice_name_is_valid(name) ? slice_read(name, &f, &why) : -ENOENT;
        if (r == -ENOENT)
                return vgpu_error_set(err, -ENOENT, "no slice named %s", strempty(name));
        /* a damaged region is removed all the same (that is one way out of it), its settings unknown */
        struct vgpu_slice_status have = {};
        snprintf(have.spec.name, sizeof(have.spec.name), "%s", name);
        if (r >= 0) {
                struct slice_info info;
                slice_file_info(&f, NULL, &info); /* dead processes' charges returned in the copy */
                slice_status_from_info(&info, &have);
        }
        if (have.usage.processes > 0)
                return vgpu_error_set(err, -EBUSY, "slice %s: %u process(es) still use it", name,
                                      have.usage.processes);
        struct vgpu_plan *plan = plan_new();
        size_t allocated = 0;
        if (!plan || !add(plan, &allocated, VGPU_ACTION_SLICE_REMOVE, &have.spec, "asked for")) {
                vgpu_plan_free(plan);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        *ret = plan;
        return 0;
}

int plan_slices(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan,
                size_t *allocated, struct vgpu_error *err) {
        if (!cfg->has_slices)
                return 0;
        int r = cfg->n_slices ? check_gpus(host, cfg, err) : 0;
        if (r < 0)
                return r;
        _cleanup_free_ struct vgpu_slice_status *live = NULL;
        size_t n_live = 0;
        if ((r = vgpu_slice_list(&live, &n_live, err)) < 0)
                return r;
        char why[160], detail[200];
        for (size_t i = 0; i < n_live; i++) {
                const struct vgpu_slice_spec *have = &live[i].spec;
                unsigned processes = live[i].usage.processes;
                const struct vgpu_slice_spec *want = NULL;
                for (size_t j = 0; j < cfg->n_slices && !want; j++)
                        if (streq(cfg->slices[j].spec.name, have->name))
                                want = &cfg->slices[j].spec;
                if (want) {
                        difference(why, sizeof(why), have, want);
                        if (!why[0])
                                continue; /* matches: kept */
                } else
                        snprintf(why, sizeof(why), "not in the file");
                if (processes > 0)
                        return vgpu_error_set(
                                err, -EBUSY,
                                "slice %s on %s: %s, but %u process%s use%s it; a slice cannot change under "
                                "running processes: stop them, then apply again",
                                have->name, have->gpu, why, processes, processes == 1 ? "" : "es",
                                processes == 1 ? "s" : "");
                snprintf(detail, sizeof(detail), want ? "differs from the file (%s): recreated" : "%s", why);
                if (!add(plan, allocated, VGPU_ACTION_SLICE_REMOVE, have, detail) ||
                    (want && !add(plan, allocated, VGPU_ACTION_SLICE_CREATE, want, detail)))
                        return -ENOMEM;
        }
        for (size_t j = 0; j < cfg->n_slices; j++) {
                bool there = false;
                for (size_t i = 0; i < n_live && !there; i++)
                        there = streq(live[i].spec.name, cfg->slices[j].spec.name);
                if (!there &&
                    !add(plan, allocated, VGPU_ACTION_SLICE_CREATE, &cfg->slices[j].spec, "not created yet"))
                        return -ENOMEM;
        }
        return 0;
}
