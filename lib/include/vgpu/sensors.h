/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensors.h — host sensors (hwmon through libsensors, the BMC through FreeIPMI) and the BMC's
 * System Event Log, as plain arrays for the daemon's collectors (included by vgpu/telemetry.h).
 *
 * Both sources are optional: a host without hwmon chips has no sensors, a host without a BMC
 * (no /dev/ipmi0) answers -ENODEV, and the caller turns the collector off quietly.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_sensor_kind {
        VGPU_SENSOR_TEMPERATURE, /* C */
        VGPU_SENSOR_VOLTAGE,     /* V */
        VGPU_SENSOR_FAN,         /* RPM */
        VGPU_SENSOR_POWER,       /* W */
        VGPU_SENSOR_CURRENT,     /* A */
        _VGPU_SENSOR_KIND_MAX,
};

enum vgpu_sensor_state {
        VGPU_SENSOR_UNKNOWN, /* no reading, or nothing to judge it by */
        VGPU_SENSOR_OK,
        VGPU_SENSOR_WARN,     /* an alarm, or past a max/min threshold */
        VGPU_SENSOR_CRITICAL, /* past a critical/emergency threshold, or its alarm */
};

struct vgpu_sensor {
        const char *source; /* static: "hwmon" or "ipmi" */
        char *chip;         /* "coretemp-isa-0000", "amdgpu-pci-0300"; "bmc" for IPMI */
        char *label;        /* "Core 0", "in1", "CPU Temp" */
        enum vgpu_sensor_kind kind;
        double value;     /* in unit; NAN when unreadable */
        const char *unit; /* static: "C", "V", "RPM", "W", "A" */
        /* thresholds in unit, NAN when the chip has none */
        double min, max, crit_min, crit;
        enum vgpu_sensor_state state;
        char bdf[VGPU_BDF_MAX]; /* the PCI function the chip sits on, "" when none */
};

/*
 * Read every hwmon chip libsensors knows of: temperatures, voltages, fans, power and current,
 * in libsensors' order (chips as detected, each chip's features by number). The state comes from the chip's alarm flags, else from comparing
 * the value with its thresholds. libsensors reads only the live /sys: with VGPU_ROOT set the
 * answer is -EOPNOTSUPP (callers fall back to the host snapshot's hwmon readings).
 */
int vgpu_sensors_read(struct vgpu_sensor **ret, size_t *ret_n, struct vgpu_error *err);
void vgpu_sensors_free(struct vgpu_sensor *s, size_t n);

/* "temperature", "voltage", "fan", "power", "current" */
const char *vgpu_sensor_kind_to_string(enum vgpu_sensor_kind k);
/* "unknown", "ok", "warn", "critical" */
const char *vgpu_sensor_state_to_string(enum vgpu_sensor_state s);

/* The first temperature sensor (temp1) on a chip of PCI function bdf, in whole degrees C, with
 * its critical threshold (INT32_MIN, VGPU_TEMP_UNKNOWN, when none). -ENOENT when none. */
int vgpu_sensors_gpu_temperature(const struct vgpu_sensor *s, size_t n, const char *bdf, int *ret_temp_c,
                                 int *ret_crit_c);

/* One System Event Log entry. */
struct vgpu_sel_entry {
        unsigned record_id;
        uint64_t time;                   /* seconds since the epoch (BMC clock); 0 when not timestamped */
        char sensor_type[48];            /* "Temperature", "Voltage", ... */
        char sensor[48];                 /* the sensor's name from the SDR, or "sensor #N" */
        char event[128];                 /* "Upper Critical - going high", with "(deasserted)" when so */
        enum vgpu_sensor_state severity; /* FreeIPMI's interpretation, raised to warn/critical for
                                                 * over-temperature and under-voltage thresholds */
        bool over_temperature, under_voltage;
        bool deasserted; /* the event ended (ipmitool's "Deasserted"); event says so too */
};

/* In-band IPMI through /dev/ipmi0 (under VGPU_ROOT) with libipmimonitoring. */
struct vgpu_ipmi;

/*
 * Open the BMC: -ENODEV (quietly: no message) when there is no /dev/ipmi0. sdr_cache_dir (a
 * host path, created if missing; NULL: /var/cache/vgpuctl/ipmi) holds FreeIPMI's SDR cache.
 * Nothing is read yet: the first vgpu_ipmi_sel_read() reports the SEL as it is then.
 */
int vgpu_ipmi_open(const char *sdr_cache_dir, struct vgpu_ipmi **ret, struct vgpu_error *err);
void vgpu_ipmi_free(struct vgpu_ipmi *ipmi);
VGPU_DEFINE_FREEP(struct vgpu_ipmi, vgpu_ipmi_free)

/* The BMC's sensors (source "ipmi", chip "bmc"), state as FreeIPMI interprets them. */
int vgpu_ipmi_sensors_read(struct vgpu_ipmi *ipmi, struct vgpu_sensor **ret, size_t *ret_n,
                           struct vgpu_error *err);

/*
 * The SEL entries added since the last call (all of them on the first), in record order: the
 * context remembers the last record id seen. A SEL that was cleared (its last id below ours)
 * starts over.
 */
int vgpu_ipmi_sel_read(struct vgpu_ipmi *ipmi, struct vgpu_sel_entry **ret, size_t *ret_n,
                       struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
