/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sensors.c — hwmon chips through libsensors (see vgpu/sensors.h).
 *
 * libsensors gives what reading hwmon by hand would not: the labels and compute statements of
 * /etc/sensors3.conf, and the chip names lm-sensors users know ("nct6775-isa-0290"). Its state
 * is process-global (sensors_init/sensors_cleanup), so each read initializes and cleans up:
 * chips that appear (a GPU driver loading) are seen at the next read, and nothing is held in
 * between. It is not thread-safe; the daemon reads from its one thread.
 *
 * libsensors is loaded with dlopen() by the first read (basic/dlopen-util.h says why): only the
 * daemon's collector reads sensors, and every vgpuctl command would pay for it at start.
 */
#include <errno.h>
#include <math.h> /* isnan(), NAN: macros, no libm */
#include <sensors/error.h>
#include <sensors/sensors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/dlopen-util.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "telemetry-dl.h"
#include "vgpu/sensors.h"
#include "vgpu/telemetry.h"

#define LIBSENSORS_FUNCS(X)           \
        X(sensors_init)               \
        X(sensors_cleanup)            \
        X(sensors_strerror)           \
        X(sensors_get_detected_chips) \
        X(sensors_snprintf_chip_name) \
        X(sensors_get_features)       \
        X(sensors_get_subfeature)     \
        X(sensors_get_value)          \
        X(sensors_get_label)
static struct { LIBSENSORS_FUNCS(DLOPEN_FIELD) } sn;
#define LIBSENSORS_SYMBOL(fn) DLOPEN_SYMBOL(sn, fn)
static const struct dlopen_symbol libsensors_symbols[] = { LIBSENSORS_FUNCS(LIBSENSORS_SYMBOL) };
struct dlopen_library telemetry_libsensors_library =
        DLOPEN_LIBRARY("libsensors.so.5", "libsensors5", libsensors_symbols);

/* "The kind has no such subfeature" (0 cannot say it: it is SENSORS_SUBFEATURE_IN_INPUT). */
#define NONE SENSORS_SUBFEATURE_UNKNOWN

/* Which subfeatures of one kind of feature mean what: NONE where the kind has none. The alarm
 * lists end at the first 0 (no alarm subfeature is 0). */
struct kind_map {
        sensors_feature_type feature;
        enum vgpu_sensor_kind kind;
        const char *unit;
        sensors_subfeature_type input, min, max, crit_min, crit, emergency;
        /* alarms: any warn one set → warn; any crit one → critical */
        sensors_subfeature_type warn_alarms[3], crit_alarms[3];
};

static const struct kind_map kinds[] = {
        { SENSORS_FEATURE_TEMP,
          VGPU_SENSOR_TEMPERATURE,
          "C",
          SENSORS_SUBFEATURE_TEMP_INPUT,
          SENSORS_SUBFEATURE_TEMP_MIN,
          SENSORS_SUBFEATURE_TEMP_MAX,
          SENSORS_SUBFEATURE_TEMP_LCRIT,
          SENSORS_SUBFEATURE_TEMP_CRIT,
          SENSORS_SUBFEATURE_TEMP_EMERGENCY,
          { SENSORS_SUBFEATURE_TEMP_ALARM, SENSORS_SUBFEATURE_TEMP_MAX_ALARM,
            SENSORS_SUBFEATURE_TEMP_MIN_ALARM },
          { SENSORS_SUBFEATURE_TEMP_CRIT_ALARM, SENSORS_SUBFEATURE_TEMP_LCRIT_ALARM,
            SENSORS_SUBFEATURE_TEMP_EMERGENCY_ALARM } },
        { SENSORS_FEATURE_IN,
          VGPU_SENSOR_VOLTAGE,
          "V",
          SENSORS_SUBFEATURE_IN_INPUT,
          SENSORS_SUBFEATURE_IN_MIN,
          SENSORS_SUBFEATURE_IN_MAX,
          SENSORS_SUBFEATURE_IN_LCRIT,
          SENSORS_SUBFEATURE_IN_CRIT,
          NONE,
          { SENSORS_SUBFEATURE_IN_ALARM, SENSORS_SUBFEATURE_IN_MIN_ALARM, SENSORS_SUBFEATURE_IN_MAX_ALARM },
          { SENSORS_SUBFEATURE_IN_LCRIT_ALARM, SENSORS_SUBFEATURE_IN_CRIT_ALARM } },
        { SENSORS_FEATURE_FAN,
          VGPU_SENSOR_FAN,
          "RPM",
          SENSORS_SUBFEATURE_FAN_INPUT,
          SENSORS_SUBFEATURE_FAN_MIN,
          SENSORS_SUBFEATURE_FAN_MAX,
          NONE,
          NONE,
          NONE,
          { SENSORS_SUBFEATURE_FAN_ALARM, SENSORS_SUBFEATURE_FAN_MIN_ALARM,
            SENSORS_SUBFEATURE_FAN_MAX_ALARM },
          /* a fan that reports a fault has stopped or is gone */
          { SENSORS_SUBFEATURE_FAN_FAULT } },
        { SENSORS_FEATURE_POWER,
          VGPU_SENSOR_POWER,
          "W",
          SENSORS_SUBFEATURE_POWER_INPUT,
          SENSORS_SUBFEATURE_POWER_MIN,
          SENSORS_SUBFEATURE_POWER_MAX,
          SENSORS_SUBFEATURE_POWER_LCRIT,
          SENSORS_SUBFEATURE_POWER_CRIT,
          NONE,
          { SENSORS_SUBFEATURE_POWER_ALARM, SENSORS_SUBFEATURE_POWER_MAX_ALARM,
            SENSORS_SUBFEATURE_POWER_CAP_ALARM },
          { SENSORS_SUBFEATURE_POWER_CRIT_ALARM, SENSORS_SUBFEATURE_POWER_LCRIT_ALARM } },
        { SENSORS_FEATURE_CURR,
          VGPU_SENSOR_CURRENT,
          "A",
          SENSORS_SUBFEATURE_CURR_INPUT,
          SENSORS_SUBFEATURE_CURR_MIN,
          SENSORS_SUBFEATURE_CURR_MAX,
          SENSORS_SUBFEATURE_CURR_LCRIT,
          SENSORS_SUBFEATURE_CURR_CRIT,
          NONE,
          { SENSORS_SUBFEATURE_CURR_ALARM, SENSORS_SUBFEATURE_CURR_MIN_ALARM,
            SENSORS_SUBFEATURE_CURR_MAX_ALARM },
          { SENSORS_SUBFEATURE_CURR_LCRIT_ALARM, SENSORS_SUBFEATURE_CURR_CRIT_ALARM } },
};

_public_ const char *vgpu_sensor_kind_to_string(enum vgpu_sensor_kind k) {
        static const char *const names[] = {
                [VGPU_SENSOR_TEMPERATURE] = "temperature",
                [VGPU_SENSOR_VOLTAGE] = "voltage",
                [VGPU_SENSOR_FAN] = "fan",
                [VGPU_SENSOR_POWER] = "power",
                [VGPU_SENSOR_CURRENT] = "current",
        };
        return (unsigned) k < ELEMENTSOF(names) ? names[k] : "unknown";
}

_public_ const char *vgpu_sensor_state_to_string(enum vgpu_sensor_state s) {
        switch (s) {
        case VGPU_SENSOR_OK:
                return "ok";
        case VGPU_SENSOR_WARN:
                return "warn";
        case VGPU_SENSOR_CRITICAL:
                return "critical";
        default:
                return "unknown";
        }
}

_public_ void vgpu_sensors_free(struct vgpu_sensor *s, size_t n) {
        for (size_t i = 0; s && i < n; i++) {
                free(s[i].chip);
                free(s[i].label);
        }
        free(s);
}

/* The subfeature's value, NAN when the chip lacks it or reading fails. */
static double value_of(const sensors_chip_name *chip, const sensors_feature *f,
                       sensors_subfeature_type type) {
        if (type == NONE)
                return NAN;
        const sensors_subfeature *sf = sn.sensors_get_subfeature(chip, f, type);
        double v;
        if (!sf || !(sf->flags & SENSORS_MODE_R) || sn.sensors_get_value(chip, sf->number, &v) < 0)
                return NAN;
        return v;
}

static bool any_alarm(const sensors_chip_name *chip, const sensors_feature *f,
                      const sensors_subfeature_type *types) {
        for (size_t i = 0; i < 3 && types[i]; i++) {
                double v = value_of(chip, f, types[i]);
                if (!isnan(v) && v != 0)
                        return true;
        }
        return false;
}

/* Alarms first (the chip compares in hardware, with its own hysteresis), else the thresholds. */
static enum vgpu_sensor_state judge(const sensors_chip_name *chip, const sensors_feature *f,
                                    const struct kind_map *k, const struct vgpu_sensor *s, double emergency) {
        if (any_alarm(chip, f, k->crit_alarms))
                return VGPU_SENSOR_CRITICAL;
        if (any_alarm(chip, f, k->warn_alarms))
                return VGPU_SENSOR_WARN;
        if (isnan(s->value))
                return VGPU_SENSOR_UNKNOWN;
        if ((!isnan(s->crit) && s->value >= s->crit) || (!isnan(emergency) && s->value >= emergency) ||
            (!isnan(s->crit_min) && s->value <= s->crit_min))
                return VGPU_SENSOR_CRITICAL;
        /* a fan's min of 0 means "no minimum", and max is rarely set for fans */
        if ((!isnan(s->max) && s->max > 0 && s->value >= s->max) ||
            (!isnan(s->min) && s->min > 0 && s->value < s->min))
                return VGPU_SENSOR_WARN;
        return VGPU_SENSOR_OK;
}

static const struct kind_map *kind_for(sensors_feature_type t) {
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (kinds[i].feature == t)
                        return &kinds[i];
        return NULL;
}

static int read_chip(const sensors_chip_name *chip, struct vgpu_sensor **list, size_t *n, size_t *allocated) {
        char name[128];
        if (sn.sensors_snprintf_chip_name(name, sizeof(name), chip) < 0)
                return 0; /* a chip it cannot name, we cannot either: skip it */
        char bdf[VGPU_BDF_MAX] = "";
        /* libsensors packs a PCI address as domain<<16 | bus<<8 | device<<3 | function */
        if (chip->bus.type == SENSORS_BUS_TYPE_PCI)
                snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%x", (unsigned) (chip->addr >> 16) & 0xffff,
                         (unsigned) (chip->addr >> 8) & 0xff, (unsigned) (chip->addr >> 3) & 0x1f,
                         (unsigned) chip->addr & 7);

        const sensors_feature *f;
        int nr = 0;
        while ((f = sn.sensors_get_features(chip, &nr))) {
                const struct kind_map *k = kind_for(f->type);
                if (!k)
                        continue;
                /* power: the instantaneous input, else the average (amdgpu has only power1_average) */
                double value = value_of(chip, f, k->input);
                if (isnan(value) && k->kind == VGPU_SENSOR_POWER)
                        value = value_of(chip, f, SENSORS_SUBFEATURE_POWER_AVERAGE);
                if (!GREEDY_REALLOC(*list, *allocated, *n + 1))
                        return -ENOMEM;
                struct vgpu_sensor *s = &(*list)[*n];
                *s = (struct vgpu_sensor){
                        .source = "hwmon",
                        .kind = k->kind,
                        .unit = k->unit,
                        .value = value,
                        .min = value_of(chip, f, k->min),
                        .max = value_of(chip, f, k->max),
                        .crit_min = value_of(chip, f, k->crit_min),
                        .crit = value_of(chip, f, k->crit),
                };
                memcpy(s->bdf, bdf, sizeof(bdf));
                s->state = judge(chip, f, k, s, value_of(chip, f, k->emergency));
                char *label = sn.sensors_get_label(chip, f);
                s->chip = strdup(name);
                s->label = label ? label : strdup(f->name);
                (*n)++; /* counted before the check, so that a failure frees what was taken */
                if (!s->chip || !s->label)
                        return -ENOMEM;
        }
        return 0;
}

_public_ int vgpu_sensors_read(struct vgpu_sensor **ret, size_t *ret_n, struct vgpu_error *err) {
        /* libsensors reads the live /sys only (it checks that /sys is sysfs), so a fixture root
         * cannot be read through it; the daemon uses the snapshot's hwmon readings there. */
        if (root_prefix()[0])
                return vgpu_error_set(err, -EOPNOTSUPP,
                                      "libsensors reads only the live /sys, not VGPU_ROOT=%s", root_prefix());

        int r = dlopen_library_load(&telemetry_libsensors_library, err);
        if (r < 0)
                return r;

        r = sn.sensors_init(NULL);
        if (r != 0) {
                sn.sensors_cleanup();
                return vgpu_error_set(err, -EIO, "libsensors: %s", sn.sensors_strerror(r));
        }
        struct vgpu_sensor *list = NULL;
        size_t n = 0, allocated = 0;
        const sensors_chip_name *chip;
        int nr = 0;
        r = 0;
        while (r >= 0 && (chip = sn.sensors_get_detected_chips(NULL, &nr)))
                r = read_chip(chip, &list, &n, &allocated);
        sn.sensors_cleanup();
        if (r < 0) {
                vgpu_sensors_free(list, n);
                return vgpu_error_set(err, r, "out of memory");
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* lround(), half away from zero, without libm: for this one call libvgpu.so would NEED
 * libm.so.6, which every vgpuctl command then maps at start (a dozen page faults). Clamped, as
 * a broken chip may report anything and INT32_MIN means "none". */
static int round_celsius(double v) {
        if (v >= 1e6 || v <= -1e6)
                return v > 0 ? 1000000 : -1000000;
        return (int) (v < 0 ? v - 0.5 : v + 0.5);
}

_public_ int vgpu_sensors_gpu_temperature(const struct vgpu_sensor *s, size_t n, const char *bdf,
                                          int *ret_temp_c, int *ret_crit_c) {
        /* the first: temp1, amdgpu's "edge", which is what the snapshot reads and what the default
         * thresholds are for (the junction runs 10-20 C hotter by design) */
        const struct vgpu_sensor *hot = NULL;
        for (size_t i = 0; !hot && i < n; i++)
                if (s[i].kind == VGPU_SENSOR_TEMPERATURE && !isnan(s[i].value) && streq(s[i].bdf, bdf))
                        hot = &s[i];
        if (!hot)
                return -ENOENT;
        *ret_temp_c = round_celsius(hot->value);
        *ret_crit_c = isnan(hot->crit) || hot->crit <= 0 ? INT32_MIN : round_celsius(hot->crit);
        return 0;
}
