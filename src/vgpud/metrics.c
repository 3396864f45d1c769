/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * metrics.c — the Prometheus text exposition (format 0.0.4) of the latest poll. It reads only
 * what the collector keeps (snapshot, telemetry, event counters): a scrape never touches sysfs,
 * so it costs the formatting alone however often Prometheus comes.
 *
 * GPU series carry gpu (index in BDF order), bdf, uuid (NVML's, "" when unknown) and model;
 * the software slices' series are written by slices.c.
 * Series whose source is absent are left out rather than written as 0, as Prometheus expects.
 * The text is kept until the next poll or event, so a scrape between them costs a copy.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpud.h"

/* A label value: backslash, double quote and newline escaped. Written in runs between the
 * characters to escape, unlocked: a big host's scrape is 12k series, and a locked fputc per
 * character was most of its time. */
static void label(FILE *f, const char *name, const char *v, bool first) {
        if (!first)
                fputc_unlocked(',', f);
        fputs_unlocked(name, f);
        fputs_unlocked("=\"", f);
        for (const char *s = v ? v : "";;) {
                size_t run = strcspn(s, "\\\"\n");
                fwrite_unlocked(s, 1, run, f);
                s += run;
                if (!*s)
                        break;
                fputs_unlocked(*s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", f);
                s++;
        }
        fputc_unlocked('"', f);
}

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gpu_labels(FILE *f, size_t index, const struct vgpu_gpu_telemetry *g) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", index);
        fputc('{', f);
        label(f, "gpu", idx, true);
        label(f, "bdf", g->bdf, false);
        label(f, "uuid", g->uuid, false);
        label(f, "model", g->model, false);
}

/* One gauge per GPU where has(g) says the value is known. */
#define GPU_GAUGE(f, t, name, help, has, fmt, value)                         \
        do {                                                                 \
                header(f, name, "gauge", help);                              \
                for (size_t _i = 0; _i < (t)->n_gpus; _i++) {                \
                        const struct vgpu_gpu_telemetry *g = &(t)->gpus[_i]; \
                        if (!(has))                                          \
                                continue;                                    \
                        fputs(name, f);                                      \
                        gpu_labels(f, _i, g);                                \
                        fprintf(f, "} " fmt "\n", value);                    \
                }                                                            \
        } while (0)

static void gpu_metrics(FILE *f, const struct vgpu_telemetry *t) {
        GPU_GAUGE(f, t, "vgpu_gpu_temperature_celsius", "GPU temperature (NVML, else hwmon temp1_input).",
                  g->temperature_c != VGPU_TEMP_UNKNOWN, "%d", g->temperature_c);
        GPU_GAUGE(f, t, "vgpu_gpu_power_watts", "Power draw (NVML).", g->power_mw >= 0, "%.3f",
                  g->power_mw / 1000.0);
        GPU_GAUGE(f, t, "vgpu_gpu_power_limit_watts", "Enforced power limit (NVML).", g->power_limit_mw >= 0,
                  "%.3f", g->power_limit_mw / 1000.0);
        GPU_GAUGE(f, t, "vgpu_gpu_framebuffer_total_bytes", "Framebuffer memory (NVML).",
                  g->memory_total >= 0, "%" PRId64, g->memory_total);
        GPU_GAUGE(f, t, "vgpu_gpu_framebuffer_used_bytes", "Framebuffer memory in use (NVML).",
                  g->memory_total >= 0, "%" PRId64, g->memory_used);
        GPU_GAUGE(f, t, "vgpu_gpu_framebuffer_reserved_bytes",
                  "Framebuffer memory the driver keeps for itself, part of used (NVML).",
                  g->memory_reserved >= 0, "%" PRId64, g->memory_reserved);
        GPU_GAUGE(f, t, "vgpu_gpu_utilization_ratio",
                  "Share of the last sample period a kernel ran on the GPU, 0..1 (NVML).",
                  g->utilization_gpu >= 0, "%g", g->utilization_gpu / 100.0);
        GPU_GAUGE(f, t, "vgpu_gpu_memory_utilization_ratio",
                  "Share of the last sample period device memory was read or written, 0..1 (NVML).",
                  g->utilization_memory >= 0, "%g", g->utilization_memory / 100.0);
        GPU_GAUGE(f, t, "vgpu_gpu_pcie_link_width", "PCIe link width the GPU trained at (lanes).",
                  g->link.width_current > 0, "%d", g->link.width_current);
        GPU_GAUGE(f, t, "vgpu_gpu_pcie_link_width_max", "PCIe link width the GPU can do (lanes).",
                  g->link.width_max > 0, "%d", g->link.width_max);
        GPU_GAUGE(f, t, "vgpu_gpu_pcie_link_speed", "PCIe link speed now, GT/s (GPUs lower it when idle).",
                  g->link.speed_current > 0, "%g", g->link.speed_current);
        GPU_GAUGE(f, t, "vgpu_gpu_pcie_link_speed_max", "PCIe link speed the GPU can do, GT/s.",
                  g->link.speed_max > 0, "%g", g->link.speed_max);
        GPU_GAUGE(f, t, "vgpu_gpu_thermal_state", "Thermal policy state: 0 ok, 1 warn, 2 critical.",
                  g->thermal != VGPU_THERMAL_UNKNOWN, "%d",
                  g->thermal == VGPU_THERMAL_CRITICAL ? 2
                  : g->thermal == VGPU_THERMAL_WARN   ? 1
                                                      : 0);
        GPU_GAUGE(f, t, "vgpu_gpu_degraded",
                  "1 when hot (warn or critical), in thermal slowdown (NVML), after a critical Xid, or its "
                  "PCIe link is narrower than it can be.",
                  true, "%d", streq(vgpud_gpu_state(g), "degraded"));
        GPU_GAUGE(f, t, "vgpu_gpu_xid_last",
                  "The last critical Xid of the GPU, kept until it is reset (0: none).", true, "%" PRIu64,
                  g->xid);

        /* Throttling: NVML's clocks-event reasons, one series per reason NVML defines, where
         * NVML reports them; elsewhere as far as the snapshot shows it, reason "thermal": at or
         * above the GPU's own slowdown temperature the hardware slows its clocks. */
        header(f, "vgpu_gpu_throttle", "gauge",
               "1 while the GPU's clocks are held down for reason (NVML's clocks-event reasons; else "
               "thermal: at or above its slowdown temperature).");
        for (size_t i = 0; i < t->n_gpus; i++) {
                const struct vgpu_gpu_telemetry *g = &t->gpus[i];
                if (g->clocks_event_reasons_known) {
                        for (unsigned b = 0; b < 32; b++) {
                                const char *reason = vgpu_nvml_clocks_event_to_string(1ULL << b);
                                if (!reason)
                                        continue;
                                fputs("vgpu_gpu_throttle", f);
                                gpu_labels(f, i, g);
                                label(f, "reason", reason, false);
                                fprintf(f, "} %d\n", !!(g->clocks_event_reasons & (1ULL << b)));
                        }
                        continue;
                }
                if (g->temperature_c == VGPU_TEMP_UNKNOWN || g->slowdown_c == VGPU_TEMP_UNKNOWN)
                        continue;
                fputs("vgpu_gpu_throttle", f);
                gpu_labels(f, i, g);
                label(f, "reason", "thermal", false);
                fprintf(f, "} %d\n", g->temperature_c >= g->slowdown_c);
        }
}

/* VDI: the hardware encoder's and frame capture's load (NVML), per GPU and per running vGPU,
 * so "the desktop is slow" can be told apart as a busy encoder, a slow capture or neither. */
static const struct stream_series {
        const char *suffix, *help;
        bool frame_capture;
        int which; /* 0 sessions, 1 average fps, 2 average latency */
} stream_series[] = {
        { "encoder_sessions", "Hardware encoder (NVENC) sessions (NVML).", false, 0 },
        { "encoder_fps", "Average frames per second over the encoder sessions (NVML).", false, 1 },
        { "encoder_latency_seconds", "Average encode latency per frame over the sessions (NVML).", false, 2 },
        { "frame_capture_sessions", "Frame capture (NVFBC) sessions (NVML).", true, 0 },
        { "frame_capture_fps", "Average frames per second captured over the sessions (NVML).", true, 1 },
        { "frame_capture_latency_seconds", "Average capture latency per frame over the sessions (NVML).",
          true, 2 },
};

static void stream_value(FILE *f, const struct stream_series *s, const struct vgpu_nvml_stream_stats *st) {
        if (s->which == 0)
                fprintf(f, "} %d\n", st->sessions);
        else if (s->which == 1)
                fprintf(f, "} %d\n", st->average_fps);
        else
                fprintf(f, "} %g\n", st->average_latency_us / 1e6);
}

static void vdi_metrics(FILE *f, const struct vgpu_telemetry *t, const struct vgpu_host *host) {
        char name[96];
        for (size_t k = 0; k < ELEMENTSOF(stream_series); k++) {
                const struct stream_series *s = &stream_series[k];
                snprintf(name, sizeof(name), "vgpu_gpu_%s", s->suffix);
                header(f, name, "gauge", s->help);
                for (size_t i = 0; host && i < host->n_gpus; i++) {
                        const struct vgpu_gpu *g = &host->gpus[i];
                        const struct vgpu_gpu_telemetry *gt = vgpu_telemetry_find(t, g->bdf);
                        if (!g->nvml || !gt)
                                continue;
                        const struct vgpu_nvml_stream_stats *st =
                                s->frame_capture ? &g->nvml->frame_capture : &g->nvml->encoder;
                        if (st->sessions < 0)
                                continue;
                        fputs(name, f);
                        gpu_labels(f, (size_t) (gt - t->gpus), gt);
                        stream_value(f, s, st);
                }
        }
        for (size_t k = 0; k <= ELEMENTSOF(stream_series); k++) {
                const struct stream_series *s = k < ELEMENTSOF(stream_series) ? &stream_series[k] : NULL;
                snprintf(name, sizeof(name), "vgpu_instance_%s", s ? s->suffix : "frame_rate_limit_fps");
                header(f, name, "gauge",
                       s ? s->help : "Frame rate the vGPU is held to now, 0 when its limiter is off (NVML).");
                for (size_t i = 0; host && i < host->n_gpus; i++) {
                        const struct vgpu_gpu *g = &host->gpus[i];
                        for (size_t j = 0; g->nvml && j < g->nvml->n_vgpus; j++) {
                                const struct vgpu_nvml_vgpu *v = &g->nvml->vgpus[j];
                                const struct vgpu_nvml_stream_stats *st = !s ? NULL
                                                                          : s->frame_capture
                                                                                  ? &v->frame_capture
                                                                                  : &v->encoder;
                                if (!v->mdev_uuid[0] || (st ? st->sessions < 0 : v->frame_rate_limit < 0))
                                        continue;
                                fputs(name, f);
                                fputc('{', f);
                                label(f, "uuid", v->mdev_uuid, true);
                                label(f, "parent", g->bdf, false);
                                if (st)
                                        stream_value(f, s, st);
                                else
                                        fprintf(f, "} %d\n", v->frame_rate_limit);
                        }
                }
        }
}

static void type_metrics(FILE *f, const struct vgpu_host *types, const struct vgpu_host *host,
                         char *const *domains) {
        header(f, "vgpu_type_available_instances", "gauge",
               "Instances of a vGPU type its parent can still create.");
        for (size_t i = 0; types && i < types->n_parents; i++)
                for (size_t j = 0; j < types->parents[i].n_types; j++) {
                        const struct vgpu_type *t = &types->parents[i].types[j];
                        if (t->available_instances < 0)
                                continue;
                        fputs_unlocked("vgpu_type_available_instances{", f);
                        label(f, "parent", t->parent, true);
                        label(f, "type", t->id, false);
                        label(f, "name", t->name, false);
                        fprintf(f, "} %" PRId64 "\n", t->available_instances);
                }
        header(f, "vgpu_instance_info", "gauge",
               "One per vGPU instance; domain is the VM holding it (libvirt), \"\" when none or unknown.");
        for (size_t i = 0; host && i < host->n_instances; i++) {
                const struct vgpu_instance *in = &host->instances[i];
                fputs("vgpu_instance_info{", f);
                label(f, "uuid", in->uuid, true);
                label(f, "type", in->type, false);
                label(f, "parent", in->parent, false);
                label(f, "domain", domains ? domains[i] : NULL, false);
                fputs("} 1\n", f);
        }
}

/* Host sensors (collect-sensors.c): hwmon chips and the BMC's, in their units (C, V, RPM, W, A). */
static void sensor_metrics(FILE *f, const struct vgpud_sensors *s) {
        header(f, "vgpu_host_sensor_value", "gauge",
               "Host sensor reading in the unit of its kind (C, V, RPM, W, A); source hwmon or ipmi.");
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1)
                        header(f, "vgpu_host_sensor_state", "gauge",
                               "Host sensor state from its alarms or thresholds: 0 ok, 1 warn, 2 critical.");
                for (size_t i = 0; i < s->n; i++) {
                        const struct vgpu_sensor *x = &s->list[i];
                        if (pass == 0 ? isnan(x->value) : x->state == VGPU_SENSOR_UNKNOWN)
                                continue;
                        fputs(pass == 0 ? "vgpu_host_sensor_value{" : "vgpu_host_sensor_state{", f);
                        label(f, "source", x->source, true);
                        label(f, "chip", x->chip, false);
                        label(f, "sensor", x->label, false);
                        label(f, "kind", vgpu_sensor_kind_to_string(x->kind), false);
                        if (pass == 0)
                                fprintf(f, "} %.6g\n", x->value);
                        else
                                fprintf(f, "} %d\n",
                                        x->state == VGPU_SENSOR_CRITICAL ? 2
                                        : x->state == VGPU_SENSOR_WARN   ? 1
                                                                         : 0);
                }
        }
}

int metrics_render(const struct vgpud *d, char **ret, size_t *ret_size) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        gpu_metrics(f, &d->telemetry);
        vdi_metrics(f, &d->telemetry, d->host);
        type_metrics(f, d->types_host, d->host, d->domains);
        slices_metrics(f, d);
        sensor_metrics(f, &d->sensors);

        header(f, "vgpu_events_total", "counter",
               "Events since vgpud started, by kind (see GET /v1/events).");
        for (int k = 0; k < _EV_MAX; k++)
                fprintf(f, "vgpu_events_total{kind=\"%s\"} %" PRIu64 "\n",
                        event_kind_to_string((enum vgpud_event_kind) k), d->events_total[k]);
        header(f, "vgpud_polls_total", "counter", "Host scans done by the collector.");
        fprintf(f, "vgpud_polls_total %" PRIu64 "\n", d->polls);
        header(f, "vgpud_last_poll_timestamp_seconds", "gauge", "When the collector last scanned the host.");
        fprintf(f, "vgpud_last_poll_timestamp_seconds %.3f\n", d->last_poll_usec / 1e6);
        header(f, "vgpud_last_poll_duration_seconds", "gauge", "How long the last scan took.");
        fprintf(f, "vgpud_last_poll_duration_seconds %.6f\n", d->last_poll_duration_usec / 1e6);
        header(f, "vgpud_metrics_render_seconds", "gauge",
               "How long making the previous /metrics text took (it is kept until the next poll or event).");
        fprintf(f, "vgpud_metrics_render_seconds %.6f\n", d->metrics_cache.render_usec / 1e6);

        bool bad = ferror(f);
        if (fclose(f) != 0 || bad) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_size = size;
        return 0;
}

int metrics_get(struct vgpud *d, char **ret, size_t *ret_size) {
        /* Everything in the text changes only with a poll or an event: between those, every
         * scrape is the same bytes, so they are rendered once and copied. */
        if (!d->metrics_cache.text || d->metrics_cache.polls != d->polls ||
            d->metrics_cache.seq != d->next_seq) {
                char *text;
                size_t size;
                uint64_t start = now_usec(CLOCK_MONOTONIC);
                int r = metrics_render(d, &text, &size);
                if (r < 0)
                        return r;
                d->metrics_cache.render_usec = now_usec(CLOCK_MONOTONIC) - start;
                free(d->metrics_cache.text);
                d->metrics_cache.text = text;
                d->metrics_cache.size = size;
                d->metrics_cache.polls = d->polls;
                d->metrics_cache.seq = d->next_seq;
        }
        char *copy = malloc(d->metrics_cache.size + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, d->metrics_cache.text, d->metrics_cache.size + 1);
        *ret = copy;
        *ret_size = d->metrics_cache.size;
        return 0;
}

void metrics_clear(struct vgpud *d) {
        free(d->metrics_cache.text);
        d->metrics_cache.text = NULL;
}
