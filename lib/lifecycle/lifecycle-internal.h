/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lifecycle-internal.h — what the lifecycle files share: the mdevctl store format. */
#pragma once

#include "vgpu/lifecycle.h"

#define MDEVCTL_STORE "/etc/mdevctl.d"

int store_parse(const char *text, const char *parent, const char *uuid, struct vgpu_mdev_spec *ret, const char **why);
char *store_format(const struct vgpu_mdev_spec *spec);
int store_write(const struct vgpu_mdev_spec *spec);
int store_remove(const char *parent, const char *uuid);
