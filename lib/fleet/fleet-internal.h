/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fleet-internal.h — what lib/fleet's files share and do not export. */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/fleet.h"

void fleet_sha256(const void *data, size_t n, uint8_t out[32]);

/* Wall clock in ms (the values' *_ms members). */
int64_t fleet_now_ms(void);

/* A JSON text for root (consumed) in *ret, -ENOMEM. */
int fleet_json_finish(json_object *root, char **ret, struct vgpu_error *err);
