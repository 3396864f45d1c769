/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* telemetry-dl.h — libsensors and libipmimonitoring as sensors.c and ipmi.c load them (dlopen on
 * first use, basic/dlopen-util.h), for tests to reach. */
#pragma once

#include "basic/dlopen-util.h"

/* Tests point .soname at a missing library before the next use. */
extern struct dlopen_library telemetry_libsensors_library, telemetry_libipmimonitoring_library;
