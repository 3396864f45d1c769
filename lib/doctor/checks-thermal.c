/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-thermal.c — how close each GPU runs to the temperature at which it slows itself down:
 * every vGPU on a throttling card slows with it, and the guests only see "slow". NVML's
 * slowdown threshold is used for NVIDIA GPUs, hwmon's temp1_crit (or temp1_max) elsewhere.
 * The host's own policy comes first: vgpud's thermal thresholds (warn 75 C, critical 85 C,
 * VGPU_THERMAL_LIMITS_DEFAULT, judged by the same vgpu_thermal_next()), so the doctor never
 * passes a card vgpud warns about; the card's own limit only tightens that.
 */
#include <limits.h>
#include <stdio.h>

#include "doctor-internal.h"
#include "vgpu/telemetry.h"

#define MARGIN_C 10

int check_thermal_margin(struct doctor *d, const struct vgpu_gpu *g) {
        _cleanup_text_ struct text ev = {};
        int temp = INT_MIN, limit = INT_MIN;
        const char *limit_name = NULL;

        const struct vgpu_nvml_gpu *n = g->nvml;
        if (n && n->temperature >= 0 && (n->temp_slowdown > 0 || n->temp_shutdown > 0)) {
                temp = n->temperature;
                /* slowdown is the point where performance drops; shutdown only when NVML lacks it */
                limit = n->temp_slowdown > 0 ? n->temp_slowdown : n->temp_shutdown;
                limit_name = n->temp_slowdown > 0 ? "slowdown" : "shutdown";
                text_line(&ev, "nvml: temperature %d C, slowdown threshold %d C, shutdown threshold %d C",
                          n->temperature, n->temp_slowdown, n->temp_shutdown);
        } else if (g->hwmon_temp_mc != INT_MIN && g->hwmon_crit_mc != INT_MIN && g->hwmon_crit_mc > 0) {
                temp = g->hwmon_temp_mc / 1000;
                limit = g->hwmon_crit_mc / 1000;
                limit_name = "critical";
                text_line(&ev, "/sys/bus/pci/devices/%s/hwmon/hwmon*/temp1_input: %d", g->bdf,
                          g->hwmon_temp_mc);
                text_line(&ev, "/sys/bus/pci/devices/%s/hwmon/hwmon*/temp1_crit (or temp1_max): %d", g->bdf,
                          g->hwmon_crit_mc);
        } else {
                if (n && n->temperature >= 0)
                        text_line(&ev, "nvml: temperature %d C, no threshold", n->temperature);
                else
                        text_line(&ev, "nvml: no temperature%s", n ? "" : " (no NVML readings)");
                if (g->hwmon_temp_mc != INT_MIN)
                        text_line(&ev,
                                  "/sys/bus/pci/devices/%s/hwmon/hwmon*/temp1_input: %d, no "
                                  "temp1_crit/temp1_max",
                                  g->bdf, g->hwmon_temp_mc);
                else
                        text_line(&ev, "/sys/bus/pci/devices/%s/hwmon: no temperature", g->bdf);
                return doctor_add(d, g->bdf, VGPU_CHECK_SKIP, &ev, NULL,
                                  "no temperature reading with a threshold");
        }

        char rem[448];
        snprintf(rem, sizeof(rem),
                 "Cool the GPU: check its fans and the chassis airflow (blanking panels, fan profile in the "
                 "BMC, e.g. "
                 "ipmitool raw / the vendor's \"performance\" fan mode), clean the filters, and lower the "
                 "load; "
                 "it slows itself down at %d C.",
                 limit);
        static const struct vgpu_thermal_limits policy = VGPU_THERMAL_LIMITS_DEFAULT;
        enum vgpu_thermal_state state = vgpu_thermal_next(VGPU_THERMAL_OK, temp, &policy);
        text_line(&ev, "thermal policy (vgpud's defaults): warn %d C, critical %d C", policy.warn_c,
                  policy.critical_c);
        int margin = limit - temp;
        if (margin <= 0)
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem,
                                  "%d C: at or above its %s temperature of %d C", temp, limit_name, limit);
        if (state == VGPU_THERMAL_CRITICAL)
                return doctor_add(d, g->bdf, VGPU_CHECK_FAIL, &ev, rem,
                                  "%d C: at or above the critical %d C (its %s "
                                  "temperature is %d C)",
                                  temp, policy.critical_c, limit_name, limit);
        if (margin <= MARGIN_C)
                return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                                  "%d C: within %d C of its %s temperature of %d C", temp, margin, limit_name,
                                  limit);
        if (state == VGPU_THERMAL_WARN)
                return doctor_add(d, g->bdf, VGPU_CHECK_WARN, &ev, rem,
                                  "%d C: at or above the warning %d C (its %s "
                                  "temperature is %d C)",
                                  temp, policy.warn_c, limit_name, limit);
        return doctor_add(d, g->bdf, VGPU_CHECK_PASS, &ev, NULL,
                          "%d C, %d C below its %s temperature of %d C", temp, margin, limit_name, limit);
}
