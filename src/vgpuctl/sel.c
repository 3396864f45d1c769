/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sel.c — `vgpuctl sel`: the BMC's System Event Log, one line per record as `ipmitool sel list`
 * prints it (id, date, time, sensor, event, Asserted/Deasserted), plus our severity and a flag
 * for over-temperature and under-voltage entries, or with --json an array of records. Read
 * in-band through libvgpu's IPMI reader (lib/telemetry/ipmi.c, FreeIPMI's libipmimonitoring),
 * the one vgpud's collector uses. No BMC (/dev/ipmi0 missing) is an error here: the user asked
 * for its log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vgpu/root.h"
#include "vgpu/sensors.h"
#include "vgpuctl.h"

static const char *flag_of(const struct vgpu_sel_entry *e) {
        return e->over_temperature ? "over-temperature" : e->under_voltage ? "under-voltage" : NULL;
}

static void print_entry(struct out *o, const struct vgpu_sel_entry *e) {
        char date[16] = "-", clock[16] = "-", iso[32];
        time_t t = (time_t) e->time;
        struct tm tm;
        bool stamped = e->time != 0 && gmtime_r(&t, &tm);
        if (stamped) {
                strftime(date, sizeof(date), "%Y-%m-%d", &tm);
                strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
                strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        /* the library appends " (deasserted)" to the event for its log lines; the table has a
         * column for it, as ipmitool's has */
        char event[sizeof(e->event)];
        snprintf(event, sizeof(event), "%s", e->event);
        const char *suffix = " (deasserted)";
        size_t len = strlen(event), slen = strlen(suffix);
        if (e->deasserted && len > slen && strcmp(event + len - slen, suffix) == 0)
                event[len - slen] = '\0';
        char sensor[sizeof(e->sensor_type) + sizeof(e->sensor) + 2];
        snprintf(sensor, sizeof(sensor), "%s %s", e->sensor_type, e->sensor);

        out_open_object(o, NULL);
        out_u64(o, OUT_ANY, "record_id", "%6s | ", e->record_id);
        out_text(o, "%s | %s | ", date, clock);
        out_string(o, OUT_JSON, "time", NULL, stamped ? iso : NULL);
        out_text(o, "%s | ", sensor);
        out_string(o, OUT_JSON, "sensor_type", NULL, e->sensor_type);
        out_string(o, OUT_JSON, "sensor", NULL, e->sensor);
        out_string(o, OUT_ANY, "event", "%s | ", event);
        out_string(o, OUT_ANY, "state", "%s | ", e->deasserted ? "Deasserted" : "Asserted");
        out_string(o, OUT_ANY, "severity", "%s", vgpu_sensor_state_to_string(e->severity));
        const char *flag = flag_of(e);
        if (flag)
                out_text(o, " | %s", flag);
        out_bool(o, OUT_JSON, "over_temperature", NULL, e->over_temperature);
        out_bool(o, OUT_JSON, "under_voltage", NULL, e->under_voltage);
        out_text(o, "\n");
        out_close_object(o);
}

void print_sel(struct out *o, const struct vgpu_sel_entry *e, size_t n) {
        out_open_array(o, NULL);
        for (size_t i = 0; i < n; i++)
                print_entry(o, &e[i]);
        out_close_array(o);
        if (n == 0)
                out_text(o, "(the System Event Log is empty)\n");
}

int verb_sel(struct cli *cli) {
        struct vgpu_error err = {};
        struct vgpu_ipmi *ipmi = NULL;
        int r = vgpu_ipmi_open(NULL, &ipmi, &err);
        if (r == -ENODEV)
                return cli_error(EXIT_FAILED,
                                 "sel: no BMC to ask: %s/dev/ipmi0 does not exist (no BMC on this host, "
                                 "or the kernel's ipmi_si and ipmi_devintf modules are not loaded: modprobe "
                                 "ipmi_devintf ipmi_si)",
                                 vgpu_root_prefix());
        if (r < 0)
                return cli_lib_error(&err);

        struct vgpu_sel_entry *e = NULL;
        size_t n = 0;
        r = vgpu_ipmi_sel_read(ipmi, &e, &n, &err);
        vgpu_ipmi_free(ipmi);
        if (r < 0)
                return cli_lib_error(&err);

        struct out *o = cli_out(cli);
        print_sel(o, e, n);
        out_free(o);
        free(e);
        return EXIT_OK;
}
