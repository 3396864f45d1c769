/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * collect-sensors.c — the host-sensor collectors (see collect-sensors.h): hwmon through
 * libsensors, the BMC's sensors and System Event Log through FreeIPMI. Each poll replaces the
 * sensor list; SEL entries added since the last poll become bmc_event events, at LOG_WARNING
 * or LOG_CRIT for over-temperature and under-voltage (and whatever FreeIPMI calls critical).
 *
 * Absent sources are normal (a VM has no BMC; a fixture root has no live /sys): each collector
 * says once that it is off and why, and keeps trying quietly, so a BMC whose driver is loaded
 * later, or a /dev/ipmi0 that appears, is picked up at the next poll.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/root.h"
#include "collect-sensors.h"
#include "log.h"
#include "snmp-agent.h"
#include "vgpud.h"

/* Drop the sensors of one source from the list (they are replaced as a block each poll). */
static void drop_source(struct vgpud_sensors *s, const char *source) {
        size_t kept = 0;
        for (size_t i = 0; i < s->n; i++) {
                if (streq(s->list[i].source, source)) {
                        free(s->list[i].chip);
                        free(s->list[i].label);
                } else
                        s->list[kept++] = s->list[i];
        }
        s->n = kept;
}

/* Append list (n entries) to s; takes it. hwmon comes first, so it is inserted at the front. */
static int add_source(struct vgpud_sensors *s, struct vgpu_sensor *list, size_t n, bool front) {
        if (n == 0) {
                free(list);
                return 0;
        }
        struct vgpu_sensor *all = realloc(s->list, (s->n + n) * sizeof(*all));
        if (!all) {
                vgpu_sensors_free(list, n);
                return -ENOMEM;
        }
        if (front) {
                memmove(all + n, all, s->n * sizeof(*all));
                memcpy(all, list, n * sizeof(*all));
        } else
                memcpy(all + s->n, list, n * sizeof(*all));
        s->list = all;
        s->n += n;
        free(list);
        return 0;
}

void sensors_collect_hwmon(struct vgpud *d, struct vgpu_host *host) {
        struct vgpud_sensors *s = &d->sensors;
        drop_source(s, "hwmon");
        s->hwmon_live = false;
        if (!d->config->collect_sensors)
                return;

        struct vgpu_error err = {};
        struct vgpu_sensor *list = NULL;
        size_t n = 0;
        int r = vgpu_sensors_read(&list, &n, &err);
        if (r == -EOPNOTSUPP) {
                /* a fixture root: the snapshot's own hwmon reading (temp1_input) stays the GPU's */
                if (!s->hwmon_off_logged)
                        log_info("sensors collector off: %s; GPU temperatures come from the host scan's "
                                 "hwmon readings",
                                 err.message);
                s->hwmon_off_logged = true;
                return;
        }
        if (r < 0) {
                if (!s->hwmon_failing)
                        log_warning("sensors collector: %s (GPU temperatures from the host scan until it "
                                    "recovers)",
                                    err.message);
                s->hwmon_failing = true;
                return;
        }
        if (s->hwmon_failing)
                log_notice("sensors collector: libsensors answers again (%zu sensors)", n);
        s->hwmon_failing = false;
        s->hwmon_live = true;

        /* libsensors now speaks for hwmon: a GPU chip's first temperature replaces the scan's */
        for (size_t i = 0; i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                int temp, crit;
                if (g->physfn[0] || vgpu_sensors_gpu_temperature(list, n, g->bdf, &temp, &crit) < 0)
                        continue;
                g->hwmon_temp_mc = temp * 1000;
                g->hwmon_crit_mc = crit == INT32_MIN ? INT32_MIN : crit * 1000;
        }
        if (add_source(s, list, n, true) < 0)
                log_error("sensors collector: out of memory");
}

static int sel_priority(const struct vgpu_sel_entry *e) {
        return e->severity == VGPU_SENSOR_CRITICAL ? LOG_CRIT
               : e->severity == VGPU_SENSOR_WARN   ? LOG_WARNING
                                                   : LOG_NOTICE;
}

static void sel_events(struct vgpud *d) {
        struct vgpud_sensors *s = &d->sensors;
        struct vgpu_error err = {};
        struct vgpu_sel_entry *entries = NULL;
        size_t n = 0;
        if (vgpu_ipmi_sel_read(s->ipmi, &entries, &n, &err) < 0) {
                if (!s->ipmi_failing)
                        log_warning("IPMI collector: %s", err.message);
                s->ipmi_failing = true;
                return;
        }
        /* The first read is the history, already on the BMC before we looked: logged as a count,
         * not replayed as events (a restart must not raise last month's alarms again). */
        if (!s->sel_baseline) {
                log_info("IPMI collector: the BMC's event log has %zu entr%s; new ones are reported as "
                         "bmc_event",
                         n, n == 1 ? "y" : "ies");
                s->sel_baseline = true;
                free(entries);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_sel_entry *e = &entries[i];
                char message[512];
                snprintf(message, sizeof(message), "BMC SEL #%u: %s %s: %s%s", e->record_id, e->sensor_type,
                         e->sensor, e->event,
                         e->over_temperature ? " (over-temperature)"
                         : e->under_voltage  ? " (under-voltage)"
                                             : "");
                event_add(d, EV_BMC_EVENT, sel_priority(e), NULL, NULL, VGPU_TEMP_UNKNOWN, "%s", message);
                /* the BMC's own alarms go out as SNMP notifications too */
                if (e->over_temperature || e->under_voltage)
                        snmp_agent_notify(d,
                                          e->over_temperature ? SNMP_NOTIFY_BMC_OVER_TEMPERATURE
                                                              : SNMP_NOTIFY_BMC_UNDER_VOLTAGE,
                                          NULL, VGPU_TEMP_UNKNOWN, 0, message);
        }
        free(entries);
}

void sensors_collect_ipmi(struct vgpud *d) {
        struct vgpud_sensors *s = &d->sensors;
        drop_source(s, "ipmi");
        if (!d->config->collect_ipmi) {
                vgpu_ipmi_free(s->ipmi);
                s->ipmi = NULL;
                s->sel_baseline = false;
                return;
        }

        struct vgpu_error err = {};
        if (!s->ipmi) {
                int r = vgpu_ipmi_open(NULL, &s->ipmi, &err);
                if (r == -ENODEV) {
                        if (!s->ipmi_off_logged)
                                log_info("IPMI collector off: no %s/dev/ipmi0 (no BMC, or ipmi_si and "
                                         "ipmi_devintf not loaded)",
                                         vgpu_root_prefix());
                        s->ipmi_off_logged = true;
                        return;
                }
                if (r < 0) {
                        if (!s->ipmi_failing)
                                log_warning("IPMI collector: %s", err.message);
                        s->ipmi_failing = true;
                        return;
                }
                log_info("IPMI collector: reading the BMC through %s/dev/ipmi0", vgpu_root_prefix());
        }

        struct vgpu_sensor *list = NULL;
        size_t n = 0;
        bool was_failing = s->ipmi_failing;
        s->ipmi_failing = false;
        if (vgpu_ipmi_sensors_read(s->ipmi, &list, &n, &err) < 0) {
                if (!was_failing)
                        log_warning("IPMI collector: %s", err.message);
                s->ipmi_failing = true;
        } else if (add_source(s, list, n, false) < 0)
                log_error("IPMI collector: out of memory");
        sel_events(d);
        if (was_failing && !s->ipmi_failing)
                log_notice("IPMI collector: the BMC answers again");
}

void sensors_stop(struct vgpud *d) {
        struct vgpud_sensors *s = &d->sensors;
        vgpu_sensors_free(s->list, s->n);
        vgpu_ipmi_free(s->ipmi);
        *s = (struct vgpud_sensors){};
}
