/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ipmi.c — the BMC's sensors and System Event Log, in-band through /dev/ipmi0, with FreeIPMI's
 * libipmimonitoring (see vgpu/sensors.h).
 *
 * The driver is pinned to OpenIPMI (the kernel's ipmi_devintf): libipmimonitoring's default,
 * KCS, talks to the I/O ports itself, which races the kernel driver and needs iopl(). With no
 * /dev/ipmi0 there is no BMC to ask (or ipmi_devintf is not loaded): -ENODEV, and no message,
 * since most hosts (and every VM) have none and that is not an error.
 *
 * The SEL is read whole on each call and filtered by record id: libipmimonitoring has no
 * "since", and record ids grow as entries are added (the BMC hands them out in order; a clear
 * starts them over, which the last id going backwards tells us).
 */
#include <errno.h>
#include <freeipmi/util/ipmi-sensor-util.h>
#include <ipmi_monitoring.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/dlopen-util.h"
#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "telemetry-dl.h"
#include "vgpu/sensors.h"

#define IPMI_DEVICE   "/dev/ipmi0"
#define SDR_CACHE_DIR "/var/cache/vgpuctl/ipmi"

/* Threshold event offsets (IPMI 2.0 table 42-2), for event reading type 0x01. */
enum {
        THRESHOLD_LOWER_NC_LOW = 0x00,
        THRESHOLD_LOWER_NR_HIGH = 0x05,
        THRESHOLD_UPPER_NC_LOW = 0x06,
        THRESHOLD_UPPER_NC_HIGH = 0x07,
        THRESHOLD_UPPER_NR_HIGH = 0x0b,
};
#define EVENT_READING_TYPE_THRESHOLD 0x01

/* libipmimonitoring (and libfreeipmi under it) is loaded with dlopen() by the first
 * vgpu_ipmi_open() on a host that has a BMC: linked, it and libgcrypt would cost every vgpuctl
 * command about 1 ms of start-up (measured: 2.1 vs 1.0 ms for an empty program), a tenth of what
 * `vgpuctl list` may take, for a collector only the daemon runs. */
#define IPMI_FUNCS(X)                                      \
        X(ipmi_get_sensor_type_string)                     \
        X(ipmi_monitoring_ctx_create)                      \
        X(ipmi_monitoring_ctx_destroy)                     \
        X(ipmi_monitoring_ctx_errnum)                      \
        X(ipmi_monitoring_ctx_errormsg)                    \
        X(ipmi_monitoring_ctx_sdr_cache_directory)         \
        X(ipmi_monitoring_ctx_strerror)                    \
        X(ipmi_monitoring_init)                            \
        X(ipmi_monitoring_sel_by_record_id)                \
        X(ipmi_monitoring_sel_iterator_destroy)            \
        X(ipmi_monitoring_sel_iterator_first)              \
        X(ipmi_monitoring_sel_iterator_next)               \
        X(ipmi_monitoring_sel_read_event_direction)        \
        X(ipmi_monitoring_sel_read_event_offset)           \
        X(ipmi_monitoring_sel_read_event_offset_string)    \
        X(ipmi_monitoring_sel_read_event_type_code)        \
        X(ipmi_monitoring_sel_read_record_id)              \
        X(ipmi_monitoring_sel_read_sel_state)              \
        X(ipmi_monitoring_sel_read_sensor_name)            \
        X(ipmi_monitoring_sel_read_sensor_number)          \
        X(ipmi_monitoring_sel_read_sensor_type)            \
        X(ipmi_monitoring_sel_read_timestamp)              \
        X(ipmi_monitoring_sensor_iterator_destroy)         \
        X(ipmi_monitoring_sensor_iterator_next)            \
        X(ipmi_monitoring_sensor_read_sensor_name)         \
        X(ipmi_monitoring_sensor_read_sensor_reading)      \
        X(ipmi_monitoring_sensor_read_sensor_reading_type) \
        X(ipmi_monitoring_sensor_read_sensor_state)        \
        X(ipmi_monitoring_sensor_read_sensor_units)        \
        X(ipmi_monitoring_sensor_readings_by_record_id)
/* libipmimonitoring.so.6 brings libfreeipmi.so.17 in, and dlsym() on its handle finds symbols
 * of both (ipmi_get_sensor_type_string is libfreeipmi's) */
static struct { IPMI_FUNCS(DLOPEN_FIELD) } dl;
#define IPMI_SYMBOL(fn) DLOPEN_SYMBOL(dl, fn)
static const struct dlopen_symbol ipmi_symbols[] = { IPMI_FUNCS(IPMI_SYMBOL) };
struct dlopen_library telemetry_libipmimonitoring_library =
        DLOPEN_LIBRARY("libipmimonitoring.so.6", "libipmimonitoring6", ipmi_symbols);

struct vgpu_ipmi {
        ipmi_monitoring_ctx_t ctx;
        char device[PATH_MAX];
        bool seen_any; /* has a SEL read succeeded (last_record_id is meaningful) */
        unsigned last_record_id;
};

static int init_errnum;
static void init_once(void) {
        if (dl.ipmi_monitoring_init(0, &init_errnum) < 0 && init_errnum == 0)
                init_errnum = IPMI_MONITORING_ERR_INTERNAL_ERROR;
}

static struct ipmi_monitoring_ipmi_config config_for(struct vgpu_ipmi *ipmi) {
        return (struct ipmi_monitoring_ipmi_config){
                .driver_type = IPMI_MONITORING_DRIVER_TYPE_OPENIPMI,
                .disable_auto_probe = 1,
                .driver_device = ipmi->device,
                .protocol_version = -1,
                .privilege_level = -1,
                .authentication_type = -1,
                .cipher_suite_id = -1,
        };
}

static int ipmi_fail(struct vgpu_ipmi *ipmi, struct vgpu_error *err, const char *what) {
        int e = dl.ipmi_monitoring_ctx_errnum(ipmi->ctx);
        int code = e == IPMI_MONITORING_ERR_OUT_OF_MEMORY ? -ENOMEM
                   : e == IPMI_MONITORING_ERR_PERMISSION  ? -EACCES
                   : e == IPMI_MONITORING_ERR_BMC_BUSY    ? -EBUSY
                                                          : -EIO;
        return vgpu_error_set(err, code, "IPMI %s through %s: %s", what, ipmi->device,
                              dl.ipmi_monitoring_ctx_errormsg(ipmi->ctx));
}

_public_ void vgpu_ipmi_free(struct vgpu_ipmi *ipmi) {
        if (!ipmi)
                return;
        if (ipmi->ctx)
                dl.ipmi_monitoring_ctx_destroy(ipmi->ctx);
        free(ipmi);
}

_public_ int vgpu_ipmi_open(const char *sdr_cache_dir, struct vgpu_ipmi **ret, struct vgpu_error *err) {
        if (root_access(IPMI_DEVICE, F_OK) < 0)
                return -ENODEV; /* no BMC, or ipmi_devintf not loaded: not an error (see top) */

        struct vgpu_error load_err = {};
        int r = dlopen_library_load(&telemetry_libipmimonitoring_library, &load_err);
        if (r < 0)
                return vgpu_error_set(err, r, "IPMI: %s", load_err.message);
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, init_once);
        if (init_errnum)
                return vgpu_error_set(err, -EIO, "libipmimonitoring: %s",
                                      dl.ipmi_monitoring_ctx_strerror(init_errnum));

        const char *cache = sdr_cache_dir ? sdr_cache_dir : SDR_CACHE_DIR;
        char cache_path[PATH_MAX];
        r = mkdir_parents_root(cache, 0700);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "IPMI: cannot create the SDR cache directory %s%s",
                                            root_prefix(), cache);
        if ((r = root_path(cache_path, sizeof(cache_path), cache)) < 0)
                return vgpu_error_set(err, r, "IPMI: SDR cache path %s: too long", cache);

        struct vgpu_ipmi *ipmi = calloc(1, sizeof(*ipmi));
        if (!ipmi)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        if ((r = root_path(ipmi->device, sizeof(ipmi->device), IPMI_DEVICE)) < 0) {
                vgpu_ipmi_free(ipmi);
                return vgpu_error_set(err, r, "IPMI: device path too long");
        }
        if (!(ipmi->ctx = dl.ipmi_monitoring_ctx_create())) {
                vgpu_ipmi_free(ipmi);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        if (dl.ipmi_monitoring_ctx_sdr_cache_directory(ipmi->ctx, cache_path) < 0) {
                r = ipmi_fail(ipmi, err, "SDR cache directory");
                vgpu_ipmi_free(ipmi);
                return r;
        }
        *ret = ipmi;
        return 0;
}

static bool sensor_kind(int units, enum vgpu_sensor_kind *ret_kind, const char **ret_unit) {
        switch (units) {
        case IPMI_MONITORING_SENSOR_UNITS_CELSIUS:
        case IPMI_MONITORING_SENSOR_UNITS_FAHRENHEIT:
                return *ret_kind = VGPU_SENSOR_TEMPERATURE, *ret_unit = "C", true;
        case IPMI_MONITORING_SENSOR_UNITS_VOLTS:
                return *ret_kind = VGPU_SENSOR_VOLTAGE, *ret_unit = "V", true;
        case IPMI_MONITORING_SENSOR_UNITS_AMPS:
                return *ret_kind = VGPU_SENSOR_CURRENT, *ret_unit = "A", true;
        case IPMI_MONITORING_SENSOR_UNITS_RPM:
                return *ret_kind = VGPU_SENSOR_FAN, *ret_unit = "RPM", true;
        case IPMI_MONITORING_SENSOR_UNITS_WATTS:
                return *ret_kind = VGPU_SENSOR_POWER, *ret_unit = "W", true;
        default:
                return false; /* discrete sensors (presence, power unit state): states, not values */
        }
}

static enum vgpu_sensor_state state_of(int s) {
        return s == IPMI_MONITORING_STATE_NOMINAL    ? VGPU_SENSOR_OK
               : s == IPMI_MONITORING_STATE_WARNING  ? VGPU_SENSOR_WARN
               : s == IPMI_MONITORING_STATE_CRITICAL ? VGPU_SENSOR_CRITICAL
                                                     : VGPU_SENSOR_UNKNOWN;
}

static double reading_of(ipmi_monitoring_ctx_t c) {
        void *p = dl.ipmi_monitoring_sensor_read_sensor_reading(c);
        if (!p)
                return NAN;
        switch (dl.ipmi_monitoring_sensor_read_sensor_reading_type(c)) {
        case IPMI_MONITORING_SENSOR_READING_TYPE_DOUBLE:
                return *(double *) p;
        case IPMI_MONITORING_SENSOR_READING_TYPE_UNSIGNED_INTEGER32:
                return *(uint32_t *) p;
        case IPMI_MONITORING_SENSOR_READING_TYPE_UNSIGNED_INTEGER8_BOOL:
                return *(uint8_t *) p;
        default:
                return NAN;
        }
}

_public_ int vgpu_ipmi_sensors_read(struct vgpu_ipmi *ipmi, struct vgpu_sensor **ret, size_t *ret_n,
                                    struct vgpu_error *err) {
        struct ipmi_monitoring_ipmi_config cfg = config_for(ipmi);
        unsigned flags = IPMI_MONITORING_SENSOR_READING_FLAGS_IGNORE_NON_INTERPRETABLE_SENSORS |
                         IPMI_MONITORING_SENSOR_READING_FLAGS_IGNORE_SCANNING_DISABLED;
        int count = dl.ipmi_monitoring_sensor_readings_by_record_id(ipmi->ctx, NULL, &cfg, flags, NULL, 0,
                                                                    NULL, NULL);
        if (count < 0)
                return ipmi_fail(ipmi, err, "sensor readings");

        struct vgpu_sensor *list = NULL;
        size_t n = 0, allocated = 0;
        int r = 0;
        for (int more = count > 0; more > 0 && r >= 0;
             more = dl.ipmi_monitoring_sensor_iterator_next(ipmi->ctx)) {
                enum vgpu_sensor_kind kind;
                const char *unit;
                int units = dl.ipmi_monitoring_sensor_read_sensor_units(ipmi->ctx);
                if (!sensor_kind(units, &kind, &unit))
                        continue;
                double v = reading_of(ipmi->ctx);
                if (units == IPMI_MONITORING_SENSOR_UNITS_FAHRENHEIT && !isnan(v))
                        v = (v - 32) * 5 / 9;
                const char *name = dl.ipmi_monitoring_sensor_read_sensor_name(ipmi->ctx);
                if (!GREEDY_REALLOC(list, allocated, n + 1)) {
                        r = -ENOMEM;
                        break;
                }
                /* libipmimonitoring does not hand out the SDR's thresholds: the state is its verdict */
                list[n] = (struct vgpu_sensor){
                        .source = "ipmi",
                        .kind = kind,
                        .unit = unit,
                        .value = v,
                        .min = NAN,
                        .max = NAN,
                        .crit_min = NAN,
                        .crit = NAN,
                        .state = isnan(v) ? VGPU_SENSOR_UNKNOWN
                                          : state_of(dl.ipmi_monitoring_sensor_read_sensor_state(ipmi->ctx)),
                        .chip = strdup("bmc"),
                        .label = strdup(name ? name : "?"),
                };
                if (!list[n++].chip || !list[n - 1].label)
                        r = -ENOMEM;
        }
        dl.ipmi_monitoring_sensor_iterator_destroy(ipmi->ctx);
        if (r < 0) {
                vgpu_sensors_free(list, n);
                return vgpu_error_set(err, r, "out of memory");
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* One SEL record from the iterator's current position. */
static void sel_entry(ipmi_monitoring_ctx_t c, unsigned id, struct vgpu_sel_entry *e) {
        *e = (struct vgpu_sel_entry){ .record_id = id };
        unsigned ts = 0;
        if (dl.ipmi_monitoring_sel_read_timestamp(c, &ts) >= 0)
                e->time = ts;
        int type = dl.ipmi_monitoring_sel_read_sensor_type(c);
        const char *type_name =
                type >= 0 && type <= 0xff ? dl.ipmi_get_sensor_type_string((uint8_t) type) : NULL;
        if (type_name)
                snprintf(e->sensor_type, sizeof(e->sensor_type), "%s", type_name);
        else
                snprintf(e->sensor_type, sizeof(e->sensor_type), "type 0x%02x", type & 0xffff);
        const char *name = dl.ipmi_monitoring_sel_read_sensor_name(c);
        if (name && name[0])
                snprintf(e->sensor, sizeof(e->sensor), "%s", name);
        else
                snprintf(e->sensor, sizeof(e->sensor), "sensor #%d",
                         dl.ipmi_monitoring_sel_read_sensor_number(c));
        bool deasserted = dl.ipmi_monitoring_sel_read_event_direction(c) ==
                          IPMI_MONITORING_SEL_EVENT_DIRECTION_DEASSERTION;
        const char *text = dl.ipmi_monitoring_sel_read_event_offset_string(c);
        snprintf(e->event, sizeof(e->event), "%s%s", text && text[0] ? text : "event",
                 deasserted ? " (deasserted)" : "");
        e->severity = state_of(dl.ipmi_monitoring_sel_read_sel_state(c));
        e->deasserted = deasserted;

        /* Over-temperature and under-voltage: a threshold crossed going the wrong way. FreeIPMI's
         * interpretation (freeipmi_interpret_sel.conf) may call them nominal; we do not. */
        int offset = dl.ipmi_monitoring_sel_read_event_offset(c);
        if (deasserted || dl.ipmi_monitoring_sel_read_event_type_code(c) != EVENT_READING_TYPE_THRESHOLD ||
            offset < 0)
                return;
        bool upper = offset >= THRESHOLD_UPPER_NC_LOW && offset <= THRESHOLD_UPPER_NR_HIGH;
        bool lower = offset >= THRESHOLD_LOWER_NC_LOW && offset <= THRESHOLD_LOWER_NR_HIGH;
        e->over_temperature = type == IPMI_MONITORING_SENSOR_TYPE_TEMPERATURE && upper;
        e->under_voltage = type == IPMI_MONITORING_SENSOR_TYPE_VOLTAGE && lower;
        if (e->over_temperature || e->under_voltage) {
                /* non-critical (the first pair of each side) warns; critical and non-recoverable are critical */
                int level = (upper ? offset - THRESHOLD_UPPER_NC_LOW : offset - THRESHOLD_LOWER_NC_LOW) / 2;
                enum vgpu_sensor_state s = level == 0 ? VGPU_SENSOR_WARN : VGPU_SENSOR_CRITICAL;
                if (e->severity == VGPU_SENSOR_UNKNOWN || e->severity < s)
                        e->severity = s;
        }
}

_public_ int vgpu_ipmi_sel_read(struct vgpu_ipmi *ipmi, struct vgpu_sel_entry **ret, size_t *ret_n,
                                struct vgpu_error *err) {
        struct ipmi_monitoring_ipmi_config cfg = config_for(ipmi);
        unsigned flags = IPMI_MONITORING_SEL_FLAGS_ASSUME_SYSTEM_EVENT_RECORD;
        int count = dl.ipmi_monitoring_sel_by_record_id(ipmi->ctx, NULL, &cfg, flags, NULL, 0, NULL, NULL);
        /* an empty SEL is an answer, not an error */
        if (count < 0 && dl.ipmi_monitoring_ctx_errnum(ipmi->ctx) != IPMI_MONITORING_ERR_NO_SEL_RECORDS)
                return ipmi_fail(ipmi, err, "SEL read");

        struct vgpu_sel_entry *list = NULL;
        size_t n = 0, allocated = 0;
        bool have_max = false;
        unsigned max_id = 0;
        int r = 0;
        for (int more = count > 0; more > 0; more = dl.ipmi_monitoring_sel_iterator_next(ipmi->ctx)) {
                int id = dl.ipmi_monitoring_sel_read_record_id(ipmi->ctx);
                if (id < 0)
                        continue;
                if (!have_max || (unsigned) id > max_id)
                        max_id = (unsigned) id;
                have_max = true;
        }
        /* cleared since we last looked: everything there now is new */
        bool cleared = ipmi->seen_any && (!have_max || max_id < ipmi->last_record_id);
        if (count > 0)
                dl.ipmi_monitoring_sel_iterator_first(ipmi->ctx);
        for (int more = count > 0; more > 0; more = dl.ipmi_monitoring_sel_iterator_next(ipmi->ctx)) {
                int id = dl.ipmi_monitoring_sel_read_record_id(ipmi->ctx);
                if (id < 0 || (ipmi->seen_any && !cleared && (unsigned) id <= ipmi->last_record_id))
                        continue;
                if (!GREEDY_REALLOC(list, allocated, n + 1)) {
                        r = -ENOMEM;
                        break;
                }
                sel_entry(ipmi->ctx, (unsigned) id, &list[n++]);
        }
        if (count > 0)
                dl.ipmi_monitoring_sel_iterator_destroy(ipmi->ctx);
        if (r < 0) {
                free(list);
                return vgpu_error_set(err, r, "out of memory");
        }
        /* an empty SEL leaves nothing to compare with: the next entry, whatever its id, is new */
        ipmi->seen_any = have_max;
        ipmi->last_record_id = have_max ? max_id : 0;
        *ret = list;
        *ret_n = n;
        return 0;
}
