/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * handlers-read.c — the GET endpoints. Each scans the host as the matching vgpuctl command
 * does and prints with the same printers (src/shared/print.h), so a body carries the keys of
 * `vgpuctl --json`; the daemon adds only what it alone knows: each GPU's health, the events.
 *
 *   /v1/gpus        {"gpus": [ list's GPU objects + "health" ]}
 *   /v1/types       {"types": `types --json`} (?parent=NAME, ?available=true)
 *   /v1/instances   {"instances": [...], "definitions": [...]}   as `list --defined --json`
 *   /v1/health      {"state", "updated", "gpus": [...], "sensors": [...], "checks": `doctor --json`} (?checks=false)
 *   /v1/events      {"events": [...], "next_seq": N}   (?since=SEQ)
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "print.h"
#include "vgpu/assign.h"
#include "vgpu/doctor.h"
#include "vgpu/lifecycle.h"

/* "2025-01-31T12:00:00.123456Z" */
static void format_time(char *buf, size_t size, uint64_t usec) {
        time_t sec = (time_t) (usec / 1000000);
        struct tm tm;
        gmtime_r(&sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%06uZ", (unsigned) (usec % 1000000));
}

static void print_temperature(struct out *o, const char *key, int c) {
        out_i64(o, OUT_JSON, key, NULL, c, c != VGPU_TEMP_UNKNOWN);
}

/*
 * The daemon's view of one GPU: the thermal policy's state and the readings behind it. An NVML
 * reading has the name it has in a GPU's "nvml" object (print_nvml); in /v1/gpus, where that
 * object is beside the health, the NVML readings are left to it (readings false), so a body
 * never carries one fact twice.
 */
static void print_health_fields(struct out *o, const struct vgpu_gpu_telemetry *t, bool readings) {
        char since[40];
        out_string(o, OUT_JSON, "state", NULL, vgpud_gpu_state(t));
        out_string(o, OUT_JSON, "thermal", NULL, vgpu_thermal_state_to_string(t->thermal));
        print_temperature(o, "temperature_c", t->temperature_c);
        out_string(o, OUT_JSON, "temperature_source", NULL, t->temperature_source);
        print_temperature(o, "warn_c", t->limits.warn_c);
        print_temperature(o, "critical_c", t->limits.critical_c);
        print_temperature(o, "hysteresis_c", t->limits.hysteresis_c);
        out_bool(o, OUT_JSON, "link_degraded", NULL, t->link_degraded);
        out_string(o, OUT_JSON, "link_source", NULL, t->link_source);
        if (readings) {
                out_i64(o, OUT_JSON, "utilization_gpu_percent", NULL, t->utilization_gpu,
                        t->utilization_gpu >= 0);
                out_i64(o, OUT_JSON, "utilization_memory_percent", NULL, t->utilization_memory,
                        t->utilization_memory >= 0);
                out_i64(o, OUT_JSON, "memory_reserved_bytes", NULL, t->memory_reserved,
                        t->memory_reserved >= 0);
                /* NVML's clocks-event reasons now set; null when NVML does not report them */
                print_clocks_event_reasons(o, "clocks_event_reasons", t->clocks_event_reasons_known,
                                           t->clocks_event_reasons);
        }
        out_i64(o, OUT_JSON, "xid", NULL, (int64_t) t->xid, t->xid != 0);
        if (t->xid) {
                char when[40];
                format_time(when, sizeof(when), t->xid_usec);
                out_string(o, OUT_JSON, "xid_time", NULL, when);
        } else
                out_null(o, "xid_time");
        out_open_array(o, "reasons");
        if (t->thermal == VGPU_THERMAL_WARN || t->thermal == VGPU_THERMAL_CRITICAL)
                out_string(o, OUT_JSON, NULL, NULL,
                           t->thermal == VGPU_THERMAL_WARN ? "thermal_warn" : "thermal_critical");
        if (t->link_degraded)
                out_string(o, OUT_JSON, NULL, NULL, "pcie_link");
        if (vgpu_telemetry_thermal_slowdown(t))
                out_string(o, OUT_JSON, NULL, NULL, "thermal_slowdown");
        if (t->xid)
                out_string(o, OUT_JSON, NULL, NULL, "xid");
        out_close_array(o);
        format_time(since, sizeof(since), t->thermal_since_usec);
        out_string(o, OUT_JSON, "thermal_since", NULL, since);
}

static void gpu_health(struct out *o, const struct vgpu_gpu *g, void *userdata) {
        const struct vgpu_gpu_telemetry *t = vgpud_gpu_health(userdata, g);
        if (!t) {
                out_null(o, "health"); /* appeared after the last poll */
                return;
        }
        out_open_object(o, "health");
        print_health_fields(o, t, false);
        out_close_object(o);
}

int handle_gpus(const struct api_request *req, const char *arg, struct api_reply *reply) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        struct json_body b;
        (void) arg;
        /* as `vgpuctl list --json` scans: the same GPU objects */
        if (vgpu_host_scan(PRINT_GPUS_SCAN, &host, &err) < 0)
                return reply_host_error(reply, &err);
        if (json_begin(&b) < 0) {
                vgpu_host_free(host);
                return reply_error(reply, 500, "out of memory");
        }
        out_open_object(b.o, NULL);
        print_gpus(b.o, host, gpu_health, req->d);
        out_close_object(b.o);
        vgpu_host_free(host);
        return json_end(&b, reply, 200);
}

int handle_types(const struct api_request *req, const char *arg, struct api_reply *reply) {
        const char *want = query_string(req, "parent");
        bool available = false;
        char bdf[VGPU_BDF_MAX];
        struct vgpu_error err = {};
        struct vgpu_host *host;
        struct json_body b;
        (void) arg;
        if (query_bool(req, "available", &available, reply) < 0)
                return 0;
        if (want && vgpu_bdf_normalize(want, bdf) == 0)
                want = bdf;
        if (vgpu_host_scan(VGPU_SCAN_TYPES, &host, &err) < 0)
                return reply_host_error(reply, &err);
        if (want && !vgpu_host_find_parent(host, want)) {
                vgpu_host_free(host);
                return reply_error(reply, 404,
                                   "%s: not a vGPU parent (no mdev_supported_types, no creatable vGPU types)",
                                   want);
        }
        if (json_begin(&b) < 0) {
                vgpu_host_free(host);
                return reply_error(reply, 500, "out of memory");
        }
        /* an object, as every body: {"types": `types --json`} */
        out_open_object(b.o, NULL);
        print_types(b.o, "types", host, want, available);
        out_close_object(b.o);
        vgpu_host_free(host);
        return json_end(&b, reply, 200);
}

int handle_instances(const struct api_request *req, const char *arg, struct api_reply *reply) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        struct vgpu_mdev_spec *specs = NULL;
        size_t n_specs = 0;
        char *warnings = NULL;
        struct json_body b;
        (void) arg;
        (void) req;
        if (vgpu_host_scan(VGPU_SCAN_DETAILS | VGPU_SCAN_GROUPS | VGPU_SCAN_INSTANCES | VGPU_SCAN_NVML, &host,
                           &err) < 0)
                return reply_host_error(reply, &err);
        if (vgpu_mdev_definitions(&specs, &n_specs, &warnings, &err) < 0) {
                vgpu_host_free(host);
                return reply_host_error(reply, &err);
        }
        /* a corrupt definition is skipped by the library; say so in the log, as vgpuctl does on stderr */
        for (char *line = warnings, *next; line && *line; line = next) {
                if ((next = strchr(line, '\n')))
                        *next++ = '\0';
                log_full(LOG_WARNING, NULL, "%s", line);
        }
        free(warnings);

        /* the VM of each instance, when libvirt answers (as `vgpuctl list` asks it) */
        struct vgpu_virt *v = NULL;
        char **domains = NULL;
        if (host->n_instances > 0 &&
            vgpu_virt_open(NULL, VGPU_VIRT_PROBE | VGPU_VIRT_READ_ONLY, &v, &err) >= 0 && v) {
                if (vgpu_instance_domains(v, host, &domains, &err) < 0)
                        log_debug("cannot tell which VMs hold the vGPUs: %s", err.message);
                vgpu_virt_free(v);
        }
        int r = json_begin(&b);
        if (r >= 0) {
                out_open_object(b.o, NULL);
                print_instances(b.o, host, domains);
                print_definitions(b.o, host, specs, n_specs);
                out_close_object(b.o);
        }
        vgpu_instance_domains_free(domains, host->n_instances);
        vgpu_mdev_specs_free(specs, n_specs);
        vgpu_host_free(host);
        return r < 0 ? reply_error(reply, 500, "out of memory") : json_end(&b, reply, 200);
}

/*
 * Doctor checks that do not pass go to the log with VGPU_CHECK (and VGPU_BDF for a per-GPU
 * one), so `journalctl VGPU_CHECK=iommu.enabled` finds them — once per change of the set, not
 * on every health request a monitoring system makes.
 */
static void log_checks(struct vgpud *d, const struct vgpu_doctor_report *report) {
        uint64_t sig = 14695981039346656037ULL;
        for (size_t i = 0; i < report->n_results; i++) {
                const struct vgpu_check_result *c = &report->results[i];
                if (c->status != VGPU_CHECK_WARN && c->status != VGPU_CHECK_FAIL)
                        continue;
                for (const char *s = c->id; *s; s++)
                        sig = (sig ^ (unsigned char) *s) * 1099511628211ULL;
                for (const char *s = c->subject ? c->subject : ""; *s; s++)
                        sig = (sig ^ (unsigned char) *s) * 1099511628211ULL;
                sig = (sig ^ (unsigned) c->status) * 1099511628211ULL;
        }
        if (sig == d->checks_logged)
                return;
        d->checks_logged = sig;
        for (size_t i = 0; i < report->n_results; i++) {
                const struct vgpu_check_result *c = &report->results[i];
                if (c->status == VGPU_CHECK_WARN || c->status == VGPU_CHECK_FAIL)
                        log_full(c->status == VGPU_CHECK_FAIL ? LOG_ERR : LOG_WARNING,
                                 &(struct log_fields){ .bdf = c->subject, .check = c->id },
                                 "doctor: %s %s%s%s: %s", c->id, vgpu_check_status_to_string(c->status),
                                 c->subject ? " on " : "", c->subject ? c->subject : "", c->summary);
        }
}

/* The host sensors of the last poll (collect-sensors.c); thresholds null where the chip has none. */
static void print_sensors(struct out *o, const struct vgpud_sensors *s) {
        out_open_array(o, "sensors");
        for (size_t i = 0; i < s->n; i++) {
                const struct vgpu_sensor *x = &s->list[i];
                out_open_object(o, NULL);
                out_string(o, OUT_JSON, "source", NULL, x->source);
                out_string(o, OUT_JSON, "chip", NULL, x->chip);
                out_string(o, OUT_JSON, "label", NULL, x->label);
                out_string(o, OUT_JSON, "kind", NULL, vgpu_sensor_kind_to_string(x->kind));
                out_double(o, OUT_JSON, "value", NULL, x->value, !isnan(x->value));
                out_string(o, OUT_JSON, "unit", NULL, x->unit);
                out_double(o, OUT_JSON, "min", NULL, x->min, !isnan(x->min));
                out_double(o, OUT_JSON, "max", NULL, x->max, !isnan(x->max));
                out_double(o, OUT_JSON, "crit_min", NULL, x->crit_min, !isnan(x->crit_min));
                out_double(o, OUT_JSON, "crit", NULL, x->crit, !isnan(x->crit));
                out_string(o, OUT_JSON, "state", NULL, vgpu_sensor_state_to_string(x->state));
                out_string(o, OUT_JSON, "bdf", NULL, x->bdf[0] ? x->bdf : NULL);
                out_close_object(o);
        }
        out_close_array(o);
}

int handle_health(const struct api_request *req, const char *arg, struct api_reply *reply) {
        const struct vgpud *d = req->d;
        bool checks = true, degraded = false;
        char when[40];
        struct json_body b;
        (void) arg;
        if (query_bool(req, "checks", &checks, reply) < 0)
                return 0;
        struct vgpu_host *host = NULL;
        struct vgpu_doctor_report *report = NULL;
        struct vgpu_error err = {};
        /* the doctor's input, as `vgpuctl doctor` reads it */
        if (checks &&
            (vgpu_host_scan(VGPU_SCAN_ALL, &host, &err) < 0 || vgpu_doctor_run(host, &report, &err) < 0)) {
                vgpu_host_free(host);
                return reply_host_error(reply, &err);
        }
        if (report)
                log_checks(req->d, report);
        if (json_begin(&b) < 0) {
                vgpu_doctor_report_free(report);
                vgpu_host_free(host);
                return reply_error(reply, 500, "out of memory");
        }
        for (size_t i = 0; i < d->telemetry.n_gpus; i++)
                degraded |= streq(vgpud_gpu_state(&d->telemetry.gpus[i]), "degraded");
        out_open_object(b.o, NULL);
        out_string(b.o, OUT_JSON, "state", NULL, d->polls == 0 ? "unknown" : degraded ? "degraded" : "ok");
        format_time(when, sizeof(when), d->last_poll_usec);
        out_string(b.o, OUT_JSON, "updated", NULL, d->polls ? when : NULL);
        out_open_array(b.o, "gpus");
        for (size_t i = 0; i < d->telemetry.n_gpus; i++) {
                const struct vgpu_gpu_telemetry *t = &d->telemetry.gpus[i];
                out_open_object(b.o, NULL);
                out_string(b.o, OUT_JSON, "bdf", NULL, t->bdf);
                out_string(b.o, OUT_JSON, "model", NULL, t->model);
                out_string(b.o, OUT_JSON, "uuid", NULL, t->uuid);
                print_health_fields(b.o, t, true);
                out_close_object(b.o);
        }
        out_close_array(b.o);
        print_sensors(b.o, &d->sensors);
        if (report) {
                /* `vgpuctl doctor --json`, member for member */
                print_doctor_report(b.o, "checks", report, NULL, 0);
        } else
                out_null(b.o, "checks");
        out_close_object(b.o);
        vgpu_doctor_report_free(report);
        vgpu_host_free(host);
        return json_end(&b, reply, 200);
}

int handle_events(const struct api_request *req, const char *arg, struct api_reply *reply) {
        const struct vgpud *d = req->d;
        const char *since_s = query_string(req, "since");
        uint64_t since = 0;
        struct json_body b;
        (void) arg;
        if (since_s) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(since_s, &end, 10);
                if (errno || end == since_s || *end || since_s[0] == '-')
                        return reply_error(reply, 400,
                                           "query argument since='%s': expected an event number (next_seq of "
                                           "an earlier answer)",
                                           since_s);
                since = v;
        }
        if (json_begin(&b) < 0)
                return reply_error(reply, 500, "out of memory");
        out_open_object(b.o, NULL);
        out_open_array(b.o, "events");
        /* the two rings (events.c), each in seq order from its oldest, merged: oldest first */
        uint64_t ne = d->n_events_kept, nd = d->n_denials_kept;
        uint64_t ie = ne > EVENTS_KEPT ? ne - EVENTS_KEPT : 0, id = nd > DENIALS_KEPT ? nd - DENIALS_KEPT : 0;
        while (ie < ne || id < nd) {
                const struct vgpud_event *a = ie < ne ? &d->events[ie % EVENTS_KEPT] : NULL;
                const struct vgpud_event *c = id < nd ? &d->denials[id % DENIALS_KEPT] : NULL;
                const struct vgpud_event *e = a && (!c || a->seq < c->seq) ? a : c;
                if (e == a)
                        ie++;
                else
                        id++;
                if (e->seq <= since)
                        continue;
                char when[40];
                format_time(when, sizeof(when), e->time_usec);
                out_open_object(b.o, NULL);
                out_u64(b.o, OUT_JSON, "seq", NULL, e->seq);
                out_string(b.o, OUT_JSON, "time", NULL, when);
                out_string(b.o, OUT_JSON, "kind", NULL, event_kind_to_string(e->kind));
                out_string(b.o, OUT_JSON, "severity", NULL,
                           e->priority <= LOG_CRIT      ? "critical"
                           : e->priority <= LOG_WARNING ? "warning"
                           : e->priority == LOG_NOTICE  ? "notice"
                                                        : "info");
                out_string(b.o, OUT_JSON, "bdf", NULL, e->bdf[0] ? e->bdf : NULL);
                out_string(b.o, OUT_JSON, "uuid", NULL, e->uuid[0] ? e->uuid : NULL);
                print_temperature(b.o, "temperature_c", e->temperature_c);
                out_string(b.o, OUT_JSON, "message", NULL, e->message);
                out_close_object(b.o);
        }
        out_close_array(b.o);
        out_u64(b.o, OUT_JSON, "next_seq", NULL, d->next_seq);
        out_close_object(b.o);
        return json_end(&b, reply, 200);
}

int handle_metrics(const struct api_request *req, const char *arg, struct api_reply *reply) {
        char *text;
        size_t size;
        (void) arg;
        if (metrics_get(req->d, &text, &size) < 0)
                return reply_error(reply, 500, "out of memory");
        free(reply->body);
        reply->body = text;
        reply->size = size;
        reply->status = 200;
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return 0;
}
