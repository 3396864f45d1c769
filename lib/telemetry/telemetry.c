/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* telemetry.c — per-GPU readings from host snapshots and the thermal policy (see vgpu/telemetry.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "vgpu/telemetry.h"

static uint64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

_public_ bool vgpu_thermal_limits_valid(const struct vgpu_thermal_limits *l) {
        return l && l->warn_c > 0 && l->critical_c > l->warn_c && l->hysteresis_c >= 0 &&
               l->hysteresis_c < l->warn_c;
}

/* 0 ok, 1 warn, 2 critical for a temperature against thresholds lowered by `lower`. */
static int level(int temp, const struct vgpu_thermal_limits *l, int lower) {
        return temp >= l->critical_c - lower ? 2 : temp >= l->warn_c - lower ? 1 : 0;
}

_public_ enum vgpu_thermal_state vgpu_thermal_next(enum vgpu_thermal_state current, int temp,
                                                   const struct vgpu_thermal_limits *l) {
        /* No reading: keep what we know. A GPU that stops answering while hot is not cool. */
        if (temp == VGPU_TEMP_UNKNOWN)
                return current;
        int cur = current == VGPU_THERMAL_CRITICAL ? 2 : current == VGPU_THERMAL_WARN ? 1 : 0;
        /* Rising takes the threshold itself; staying needs only threshold - hysteresis, and
         * never more than the level already held: that band is what stops the flapping. */
        int up = level(temp, l, 0), hold = level(temp, l, l->hysteresis_c);
        int held = cur < hold ? cur : hold;
        int next = up > held ? up : held;
        return next == 2 ? VGPU_THERMAL_CRITICAL : next == 1 ? VGPU_THERMAL_WARN : VGPU_THERMAL_OK;
}

_public_ const char *vgpu_thermal_state_to_string(enum vgpu_thermal_state s) {
        switch (s) {
        case VGPU_THERMAL_OK:
                return "ok";
        case VGPU_THERMAL_WARN:
                return "warn";
        case VGPU_THERMAL_CRITICAL:
                return "critical";
        default:
                return "unknown";
        }
}

_public_ const char *vgpu_telemetry_event_kind_to_string(enum vgpu_telemetry_event_kind k) {
        static const char *const names[] = {
                [VGPU_EVENT_THERMAL_WARN] = "thermal_warn",
                [VGPU_EVENT_THERMAL_CRITICAL] = "thermal_critical",
                [VGPU_EVENT_THERMAL_RECOVERED] = "thermal_recovered",
                [VGPU_EVENT_LINK_DEGRADED] = "link_degraded",
                [VGPU_EVENT_LINK_RECOVERED] = "link_recovered",
                [VGPU_EVENT_GPU_ADDED] = "gpu_added",
                [VGPU_EVENT_GPU_REMOVED] = "gpu_removed",
        };
        return (unsigned) k < ELEMENTSOF(names) ? names[k] : "unknown";
}

static void gpu_telemetry_done(struct vgpu_gpu_telemetry *g) {
        free(g->model);
        free(g->uuid);
}

_public_ void vgpu_telemetry_free(struct vgpu_telemetry *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_gpus; i++)
                gpu_telemetry_done(&t->gpus[i]);
        free(t->gpus);
        *t = (struct vgpu_telemetry){};
}

static int cmp_bdf(const void *key, const void *elem) {
        return strcmp(key, ((const struct vgpu_gpu_telemetry *) elem)->bdf);
}

_public_ const struct vgpu_gpu_telemetry *vgpu_telemetry_find(const struct vgpu_telemetry *t,
                                                              const char *bdf) {
        return t && bdf ? bsearch_safe(bdf, t->gpus, t->n_gpus, sizeof(t->gpus[0]), cmp_bdf) : NULL;
}

/* PCIe generation to GT/s per lane, as the specification fixes them. */
static double pcie_gen_speed(int gen) {
        static const double speeds[] = { 0, 2.5, 5, 8, 16, 32, 64 };
        return gen > 0 && (size_t) gen < ELEMENTSOF(speeds) ? speeds[gen] : 0;
}

static void nvml_link(const struct vgpu_nvml_gpu *n, struct vgpu_link *ret, const char **ret_source) {
        *ret = (struct vgpu_link){
                .speed_current = pcie_gen_speed(n->pcie_gen_current),
                .speed_max = pcie_gen_speed(n->pcie_gen_max),
                .width_current = n->pcie_width_current > 0 ? n->pcie_width_current : 0,
                .width_max = n->pcie_width_max,
        };
        *ret_source = "nvml";
}

/* The readings of one GPU from the snapshot; the thermal state is left to the caller. */
static int read_gpu(const struct vgpu_gpu *g, unsigned sources, struct vgpu_gpu_telemetry *out) {
        const struct vgpu_nvml_gpu *n = sources & VGPU_TELEMETRY_NVML ? g->nvml : NULL;
        char ids[16];

        *out = (struct vgpu_gpu_telemetry){
                .temperature_c = VGPU_TEMP_UNKNOWN,
                .slowdown_c = VGPU_TEMP_UNKNOWN,
                .power_mw = -1,
                .power_limit_mw = -1,
                .memory_total = -1,
                .memory_used = -1,
                .memory_reserved = -1,
                .utilization_gpu = -1,
                .utilization_memory = -1,
        };
        snprintf(out->bdf, sizeof(out->bdf), "%s", g->bdf);
        snprintf(ids, sizeof(ids), "%04x:%04x", g->vendor_id, g->device_id);
        if (!(out->model = strdup(n && n->name ? n->name : ids)))
                return -ENOMEM;
        if (n && n->uuid && !(out->uuid = strdup(n->uuid)))
                return -ENOMEM;
        if (n && n->temperature >= 0) {
                out->temperature_c = n->temperature;
                out->temperature_source = "nvml";
                out->slowdown_c = n->temp_slowdown > 0 ? n->temp_slowdown : VGPU_TEMP_UNKNOWN;
        } else if ((sources & VGPU_TELEMETRY_HWMON) && g->hwmon_temp_mc != INT32_MIN) {
                out->temperature_c = g->hwmon_temp_mc / 1000;
                out->temperature_source = "hwmon";
                out->slowdown_c = g->hwmon_crit_mc != INT32_MIN && g->hwmon_crit_mc > 0
                                          ? g->hwmon_crit_mc / 1000
                                          : VGPU_TEMP_UNKNOWN;
        }
        if (n) {
                out->power_mw = n->power_mw;
                out->power_limit_mw = n->power_limit_mw;
                if (n->memory_total > 0) {
                        out->memory_total = (int64_t) n->memory_total;
                        out->memory_used = (int64_t) n->memory_used;
                        out->memory_reserved = n->memory_reserved;
                }
                out->utilization_gpu = n->utilization_gpu;
                out->utilization_memory = n->utilization_memory;
                out->clocks_event_reasons_known = n->clocks_event_reasons_known;
                out->clocks_event_reasons = n->clocks_event_reasons;
        }
        if (sources & VGPU_TELEMETRY_PCIE) {
                out->link = g->link;
                out->link_source = g->link.width_max > 0 || g->link.speed_max > 0 ? "sysfs" : NULL;
                /* sysfs has no link (a hypervisor hiding the capability, an old kernel): NVML's */
                if (!out->link_source && n && n->pcie_width_max > 0)
                        nvml_link(n, &out->link, &out->link_source);
                /* Width only: GPUs lower the link speed when idle, which is not a fault. */
                out->link_degraded = out->link.width_current > 0 && out->link.width_max > 0 &&
                                     out->link.width_current < out->link.width_max;
        }
        return 0;
}

static struct vgpu_telemetry_event *add_event(struct vgpu_telemetry_event **events, size_t *n,
                                              size_t *allocated, enum vgpu_telemetry_event_kind kind,
                                              const struct vgpu_gpu_telemetry *g) {
        if (!GREEDY_REALLOC(*events, *allocated, *n + 1))
                return NULL;
        struct vgpu_telemetry_event *e = &(*events)[(*n)++];
        *e = (struct vgpu_telemetry_event){ .kind = kind,
                                            .temperature_c = g->temperature_c,
                                            .threshold_c = VGPU_TEMP_UNKNOWN };
        snprintf(e->bdf, sizeof(e->bdf), "%s", g->bdf);
        return e;
}

static int thermal_event(struct vgpu_telemetry_event **events, size_t *n, size_t *allocated,
                         const struct vgpu_gpu_telemetry *g, enum vgpu_thermal_state from) {
        enum vgpu_thermal_state to = g->thermal;
        if (to == from || to == VGPU_THERMAL_UNKNOWN ||
            (from == VGPU_THERMAL_UNKNOWN && to == VGPU_THERMAL_OK))
                return 0;
        bool rising = from == VGPU_THERMAL_UNKNOWN || to > from;
        enum vgpu_telemetry_event_kind kind = !rising                       ? VGPU_EVENT_THERMAL_RECOVERED
                                              : to == VGPU_THERMAL_CRITICAL ? VGPU_EVENT_THERMAL_CRITICAL
                                                                            : VGPU_EVENT_THERMAL_WARN;
        struct vgpu_telemetry_event *e = add_event(events, n, allocated, kind, g);
        if (!e)
                return -ENOMEM;
        e->from = from;
        e->to = to;
        /* the threshold crossed going up; the one left (minus hysteresis) coming down */
        int crossed = rising ? (to == VGPU_THERMAL_CRITICAL ? g->limits.critical_c : g->limits.warn_c)
                             : (from == VGPU_THERMAL_CRITICAL ? g->limits.critical_c : g->limits.warn_c);
        e->threshold_c = crossed;
        if (rising)
                snprintf(e->message, sizeof(e->message),
                         "%s (%s): %d C reached the %s threshold of %d C (%s reading)", g->bdf, g->model,
                         g->temperature_c, to == VGPU_THERMAL_CRITICAL ? "critical" : "warning", crossed,
                         strempty(g->temperature_source));
        else
                snprintf(e->message, sizeof(e->message),
                         "%s (%s): %d C, below %d C (the %s threshold of %d C less %d C hysteresis): %s",
                         g->bdf, g->model, g->temperature_c, crossed - g->limits.hysteresis_c,
                         from == VGPU_THERMAL_CRITICAL ? "critical" : "warning", crossed,
                         g->limits.hysteresis_c, to == VGPU_THERMAL_OK ? "recovered" : "back to warning");
        return 0;
}

static int link_event(struct vgpu_telemetry_event **events, size_t *n, size_t *allocated,
                      const struct vgpu_gpu_telemetry *g, bool was_degraded) {
        if (g->link_degraded == was_degraded)
                return 0;
        struct vgpu_telemetry_event *e =
                add_event(events, n, allocated,
                          g->link_degraded ? VGPU_EVENT_LINK_DEGRADED : VGPU_EVENT_LINK_RECOVERED, g);
        if (!e)
                return -ENOMEM;
        snprintf(e->message, sizeof(e->message), "%s (%s): PCIe link %s: x%d of x%d at %g of %g GT/s", g->bdf,
                 g->model, g->link_degraded ? "degraded" : "back to full width", g->link.width_current,
                 g->link.width_max, g->link.speed_current, g->link.speed_max);
        return 0;
}

_public_ int vgpu_telemetry_update(struct vgpu_telemetry *t, const struct vgpu_host *host, unsigned sources,
                                   const struct vgpu_thermal_limits *defaults,
                                   vgpu_thermal_limits_fn limits_for, void *userdata,
                                   struct vgpu_telemetry_event **ret_events, size_t *ret_n_events,
                                   struct vgpu_error *err) {
        if (!vgpu_thermal_limits_valid(defaults))
                return vgpu_error_set(err, -EINVAL,
                                      "thermal limits: need 0 < warn < critical and 0 <= hysteresis < warn");

        struct vgpu_telemetry next = { .updated_usec = now_realtime_usec() };
        struct vgpu_telemetry_event *events = NULL;
        size_t n_events = 0, allocated = 0;
        bool first = t->updated_usec == 0;
        int r = 0;

        size_t n_pfs = 0;
        for (size_t i = 0; i < host->n_gpus; i++)
                n_pfs += !host->gpus[i].physfn[0];
        if (n_pfs > 0 && !(next.gpus = calloc(n_pfs, sizeof(*next.gpus))))
                return vgpu_error_set(err, -ENOMEM, "out of memory");

        /* the snapshot is sorted by BDF, so next.gpus is too */
        for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (g->physfn[0])
                        continue;
                struct vgpu_gpu_telemetry *gt = &next.gpus[next.n_gpus];
                r = read_gpu(g, sources, gt);
                next.n_gpus++; /* even when it failed: the model read already is freed with it */
                if (r < 0)
                        break;
                gt->limits = *defaults;
                struct vgpu_thermal_limits l;
                if (limits_for && limits_for(g, gt->model, &l, userdata) >= 0 &&
                    vgpu_thermal_limits_valid(&l))
                        gt->limits = l;

                const struct vgpu_gpu_telemetry *prev = vgpu_telemetry_find(t, gt->bdf);
                /* a critical Xid holds while the GPU stays, driver bound (vgpu_telemetry_note_xid) */
                if (prev && g->driver) {
                        gt->xid = prev->xid;
                        gt->xid_usec = prev->xid_usec;
                }
                enum vgpu_thermal_state from = prev ? prev->thermal : VGPU_THERMAL_UNKNOWN;
                gt->thermal = vgpu_thermal_next(from, gt->temperature_c, &gt->limits);
                gt->thermal_since_usec =
                        prev && prev->thermal == gt->thermal ? prev->thermal_since_usec : next.updated_usec;
                if (!prev && !first) {
                        struct vgpu_telemetry_event *e =
                                add_event(&events, &n_events, &allocated, VGPU_EVENT_GPU_ADDED, gt);
                        if (!e) {
                                r = -ENOMEM;
                                break;
                        }
                        snprintf(e->message, sizeof(e->message), "%s (%s): GPU appeared", gt->bdf, gt->model);
                }
                if ((r = thermal_event(&events, &n_events, &allocated, gt, from)) < 0 ||
                    (r = link_event(&events, &n_events, &allocated, gt, prev && prev->link_degraded)) < 0)
                        break;
        }
        for (size_t i = 0; r >= 0 && i < t->n_gpus; i++) {
                if (vgpu_telemetry_find(&next, t->gpus[i].bdf))
                        continue;
                struct vgpu_telemetry_event *e =
                        add_event(&events, &n_events, &allocated, VGPU_EVENT_GPU_REMOVED, &t->gpus[i]);
                if (!e)
                        r = -ENOMEM;
                else
                        snprintf(e->message, sizeof(e->message), "%s (%s): GPU gone", t->gpus[i].bdf,
                                 t->gpus[i].model);
        }
        if (r < 0) {
                vgpu_telemetry_free(&next);
                free(events);
                return vgpu_error_set(err, r, "out of memory");
        }
        vgpu_telemetry_free(t);
        *t = next;
        if (ret_events) {
                *ret_events = events;
                *ret_n_events = n_events;
        } else
                free(events);
        return 0;
}

_public_ int vgpu_telemetry_note_xid(struct vgpu_telemetry *t, const char *bdf, uint64_t xid,
                                     uint64_t time_usec) {
        struct vgpu_gpu_telemetry *g = (struct vgpu_gpu_telemetry *) vgpu_telemetry_find(t, bdf);
        if (!g)
                return -ENOENT;
        g->xid = xid;
        g->xid_usec = time_usec;
        return 0;
}

_public_ bool vgpu_telemetry_thermal_slowdown(const struct vgpu_gpu_telemetry *g) {
        return g && g->clocks_event_reasons_known &&
               (g->clocks_event_reasons & VGPU_NVML_CLOCKS_EVENT_THERMAL);
}
