/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * telemetry.h — per-GPU readings distilled from host snapshots, and the thermal policy on them.
 *
 * A daemon scans the host on an interval and feeds each snapshot to vgpu_telemetry_update(),
 * which keeps one entry per physical GPU (temperature from NVML, else hwmon; power; memory;
 * PCIe link) and the state of the thermal policy: warn and critical thresholds with
 * hysteresis, so a temperature hovering at a threshold changes state once, not every poll.
 * Each change of state comes back as an event for the caller to log, count and act on.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/sensors.h" /* host sensors and the BMC's SEL, for the daemon's collectors */

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_TEMP_UNKNOWN INT32_MIN

/* Thresholds in degrees C. A state is left only when the temperature is hysteresis below it. */
struct vgpu_thermal_limits {
        int warn_c;
        int critical_c;
        int hysteresis_c;
};

/* The thermal policy's default thresholds: vgpud's [thermal] defaults and what `vgpuctl doctor`'s
 * thermal.margin judges by, so the two never disagree about one reading. */
#define VGPU_THERMAL_WARN_C       75
#define VGPU_THERMAL_CRITICAL_C   85
#define VGPU_THERMAL_HYSTERESIS_C 5
#define VGPU_THERMAL_LIMITS_DEFAULT                                                   \
        {                                                                             \
                .warn_c = VGPU_THERMAL_WARN_C, .critical_c = VGPU_THERMAL_CRITICAL_C, \
                .hysteresis_c = VGPU_THERMAL_HYSTERESIS_C                             \
        }

enum vgpu_thermal_state {
        VGPU_THERMAL_UNKNOWN, /* no temperature reading */
        VGPU_THERMAL_OK,
        VGPU_THERMAL_WARN,
        VGPU_THERMAL_CRITICAL,
};

/* Which sources to use; a source left out keeps its fields unknown. */
enum {
        VGPU_TELEMETRY_NVML = 1 << 0,  /* the snapshot's NVML readings */
        VGPU_TELEMETRY_HWMON = 1 << 1, /* the snapshot's hwmon temperature (when NVML has none) */
        VGPU_TELEMETRY_PCIE = 1 << 2,  /* PCIe link width/speed and its degradation */
};

/* One physical GPU (VFs share their PF's temperature and link, so they have no entry). */
struct vgpu_gpu_telemetry {
        char bdf[VGPU_BDF_MAX];
        char *model;                    /* NVML's name, else "vendor:device" ("1002:7362") */
        char *uuid;                     /* NVML's GPU UUID, NULL when unknown */
        int temperature_c;              /* VGPU_TEMP_UNKNOWN when no source has one */
        const char *temperature_source; /* static "nvml" or "hwmon"; NULL when unknown */
        int slowdown_c;         /* the GPU's own slowdown threshold (NVML, else hwmon crit); or unknown */
        int64_t power_mw;       /* -1 unknown */
        int64_t power_limit_mw; /* -1 unknown */
        int64_t memory_total;   /* bytes, -1 unknown */
        int64_t memory_used;
        int64_t memory_reserved; /* bytes the driver keeps (NVML), -1 unknown */
        int utilization_gpu;     /* percent (NVML), -1 unknown */
        int utilization_memory;  /* percent (NVML), -1 unknown */
        bool clocks_event_reasons_known;
        uint64_t
                clocks_event_reasons; /* VGPU_NVML_CLOCKS_EVENT_* bits (NVML); a thermal one degrades the GPU */
        uint64_t xid;                 /* the last critical Xid (vgpu_telemetry_note_xid), 0 when none */
        uint64_t xid_usec;            /* CLOCK_REALTIME it came at */
        struct vgpu_link link;        /* zeros when unknown or PCIe collection is off */
        const char *link_source;      /* static "sysfs" or "nvml" (when sysfs has none); NULL when unknown */
        bool link_degraded; /* trained narrower than the card can (speed drops when idle are normal) */
        struct vgpu_thermal_limits limits; /* the thresholds applied to this GPU */
        enum vgpu_thermal_state thermal;
        uint64_t thermal_since_usec; /* CLOCK_REALTIME of the last thermal state change */
};

struct vgpu_telemetry {
        struct vgpu_gpu_telemetry *gpus; /* sorted by BDF */
        size_t n_gpus;
        uint64_t updated_usec; /* CLOCK_REALTIME of the last update */
};

enum vgpu_telemetry_event_kind {
        VGPU_EVENT_THERMAL_WARN,      /* rose to or past warn (from ok) */
        VGPU_EVENT_THERMAL_CRITICAL,  /* rose to or past critical */
        VGPU_EVENT_THERMAL_RECOVERED, /* fell back below a threshold minus hysteresis */
        VGPU_EVENT_LINK_DEGRADED,
        VGPU_EVENT_LINK_RECOVERED,
        VGPU_EVENT_GPU_ADDED, /* a GPU not in the previous update (not on the first) */
        VGPU_EVENT_GPU_REMOVED,
        _VGPU_EVENT_TELEMETRY_MAX,
};

struct vgpu_telemetry_event {
        enum vgpu_telemetry_event_kind kind;
        char bdf[VGPU_BDF_MAX];
        enum vgpu_thermal_state from, to; /* thermal events */
        int temperature_c;
        int threshold_c;   /* the threshold crossed (recovery: the one left) */
        char message[256]; /* one line for logs */
};

/* Fill *ret with the thresholds for g; return 0, or a negative errno to use the defaults. */
typedef int (*vgpu_thermal_limits_fn)(const struct vgpu_gpu *g, const char *model,
                                      struct vgpu_thermal_limits *ret, void *userdata);

/*
 * Refresh t from host (scanned with VGPU_SCAN_DETAILS, and VGPU_SCAN_NVML for NVML readings)
 * and run the thermal policy. limits_for (may be NULL) picks per-GPU thresholds, defaults
 * otherwise. *ret_events (may be NULL) receives the state changes, in GPU order; free it with
 * free(). On failure t is unchanged.
 */
int vgpu_telemetry_update(struct vgpu_telemetry *t, const struct vgpu_host *host, unsigned sources,
                          const struct vgpu_thermal_limits *defaults, vgpu_thermal_limits_fn limits_for,
                          void *userdata, struct vgpu_telemetry_event **ret_events, size_t *ret_n_events,
                          struct vgpu_error *err);
/* Free what t holds (not t itself: it is the caller's). */
void vgpu_telemetry_free(struct vgpu_telemetry *t);

const struct vgpu_gpu_telemetry *vgpu_telemetry_find(const struct vgpu_telemetry *t, const char *bdf);

/*
 * Remember a critical Xid on GPU bdf (see vgpu_xid_describe()). It stays on the GPU through
 * later updates until the GPU is gone from a snapshot or has no driver bound in one (hot
 * unplug, remove/rescan reset, driver unload for a reload): what NVIDIA asks for after such an
 * Xid. Returns 0, or -ENOENT when t has no such GPU.
 */
int vgpu_telemetry_note_xid(struct vgpu_telemetry *t, const char *bdf, uint64_t xid, uint64_t time_usec);

/* Is the GPU held down by a thermal slowdown NVML reports (software or hardware)? */
bool vgpu_telemetry_thermal_slowdown(const struct vgpu_gpu_telemetry *g);

/* The next state for a reading, given the current one: the policy alone, without side effects. */
enum vgpu_thermal_state vgpu_thermal_next(enum vgpu_thermal_state current, int temperature_c,
                                          const struct vgpu_thermal_limits *limits);

/* Are the limits usable (0 < warn < critical, 0 <= hysteresis < warn)? */
bool vgpu_thermal_limits_valid(const struct vgpu_thermal_limits *limits);

/* "unknown", "ok", "warn", "critical". */
const char *vgpu_thermal_state_to_string(enum vgpu_thermal_state s);
/* "thermal_warn", "thermal_critical", "thermal_recovered", "link_degraded", ... */
const char *vgpu_telemetry_event_kind_to_string(enum vgpu_telemetry_event_kind k);

#ifdef __cplusplus
}
#endif
