/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * collect-sensors.h — the host-sensor collectors of vgpud: hwmon through libsensors and the
 * BMC (sensors, System Event Log) through FreeIPMI, each switched by [collectors] sensors= and
 * ipmi=, each off quietly (one log line) when its source is absent.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/host.h"
#include "vgpu/sensors.h"

struct vgpud;

struct vgpud_sensors {
        struct vgpu_sensor *list; /* hwmon then ipmi, as of the last poll */
        size_t n;
        bool hwmon_live;        /* libsensors answered at the last poll */
        struct vgpu_ipmi *ipmi; /* NULL while the BMC is absent or the collector off */
        bool sel_baseline;      /* the SEL was read once: later entries are events */
        bool ipmi_off_logged, hwmon_off_logged, ipmi_failing, hwmon_failing;
};

/*
 * Before the telemetry update: read libsensors and put its readings for GPU chips (amdgpu,
 * i915/xe hwmon on the GPU's PCI function) into the snapshot's hwmon fields, where the
 * telemetry's hwmon source takes them (NVML still comes first).
 */
void sensors_collect_hwmon(struct vgpud *d, struct vgpu_host *host);
/* After it: the BMC's sensors, and new SEL entries as bmc_event events. */
void sensors_collect_ipmi(struct vgpud *d);
void sensors_stop(struct vgpud *d);
