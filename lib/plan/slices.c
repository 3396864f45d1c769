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

/* The host's side of the file's slices: each GPU an NVIDIA physical function, with room for
 * the slices and memory for their quotas together (when the GPU's memory is known). */
static int check_gpus(const struct vgpu_config *cfg, struct vgpu_error *err) {
        struct vgpu_host *host;
        int r = vgpu_host_scan(VGPU_SCAN_NVML, &host, err);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && i < cfg->n_slices; i++) {
                const struct vgpu_config_slice *c = &cfg->slices[i];
                const struct vgpu_slice_spec *s = &c->spec;
                const struct vgpu_gpu *g = vgpu_host_find_gpu(host, s->gpu);
                if (!g || g->vendor_id != 0x10de || g->physfn[0]) {
                        r = vgpu_error_set(err, -ENODEV,
                                           "%s:%d:%d: slice %s: no NVIDIA GPU (physical function) at %s",
                                           cfg->source, c->line, c->column, s->name, s->gpu);
                        break;
                }
                if (slice_gpu_refusal(g)) {
                        r = vgpu_error_set(err, -EBUSY, "%s:%d:%d: slice %s: %s: %s", cfg->source, c->line,
                                           c->column, s->name, s->gpu, slice_gpu_refusal(g));
                        break;
                }
                uint64_t total = g->nvml ? g->nvml->memory_total : 0, quotas = 0;
                unsigned count = 0;
                for (size_t j = 0; j <= i; j++)
                        if (streq(cfg->slices[j].spec.gpu, s->gpu)) {
                                quotas += cfg->slices[j].spec.memory;
                                count++;
                        }
                if (count > SLICE_MAX)
                        r = vgpu_error_set(err, -ENOSPC, "%s:%d:%d: slice %s: %s holds at most %u slices",
                                           cfg->source, c->line, c->column, s->name, s->gpu, SLICE_MAX);
                else if (total && quotas > total)
                        r = vgpu_error_set(
                                err, -ENOSPC,
                                "%s:%d:%d: field 'memory': the quotas of the slices on %s add up to %" PRIu64
                                " MiB with slice %s; the GPU has %" PRIu64 " MiB",
                                cfg->source, c->line, c->column, s->gpu, quotas >> 20, s->name, total >> 20);
        }
        vgpu_host_free(host);
        return r;
}

int plan_slices(const struct vgpu_config *cfg, struct vgpu_plan *plan, size_t *allocated,
                struct vgpu_error *err) {
        if (!cfg->has_slices)
                return 0;
        int r = cfg->n_slices ? check_gpus(cfg, err) : 0;
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
