/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cleanup.h — freeing libvgpu's objects when a variable goes out of scope (GCC and Clang's
 * cleanup attribute). Every destructor is named TYPE_free and accepts NULL; each public header
 * defines TYPE_freep next to it for objects the library allocates:
 *
 *     __attribute__((cleanup(vgpu_host_freep))) struct vgpu_host *host = NULL;
 *
 * Structs the caller owns (a struct vgpu_mdev_spec on the stack, struct vgpu_telemetry, struct
 * vgpu_restore_report) have a TYPE_free that frees what they hold, which the attribute takes as
 * it is: __attribute__((cleanup(vgpu_mdev_spec_free))) struct vgpu_mdev_spec spec = {};
 * Arrays returned with a count (specs, sensors, domains) are freed by their _free(array, n).
 */
#pragma once

/* Define func##p(type **p), which calls func(*p) when *p is not NULL. */
#define VGPU_DEFINE_FREEP(type, func)          \
        static inline void func##p(type **p) { \
                if (*p)                        \
                        func(*p);              \
        }
