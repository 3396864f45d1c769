/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sensors-dl.h — libsensors as sensors.c loads it (dlopen on first read), for tests to reach. */
#pragma once

#include "basic/dlopen-util.h"

/* Tests point .soname at a missing library before the first read. */
extern struct dlopen_library telemetry_libsensors_library;
