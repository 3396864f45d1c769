/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvml-events.h — GPU error events from NVIDIA's management library: Xid errors (the driver's
 * numbered fault reports) and ECC errors, read without ever blocking.
 *
 * A watcher registers every NVIDIA physical GPU of a host snapshot with one NVML event set and
 * keeps NVML loaded until it is closed. vgpu_nvml_events_read() drains what arrived since the
 * last call with a zero timeout, so a daemon can call it on each poll of its event loop. A GPU
 * that appears later (or comes back after a reset, with a new NVML handle) needs a new watcher.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_nvml_event_type {
        VGPU_NVML_EVENT_XID,            /* nvmlEventTypeXidCriticalError; data is the Xid */
        VGPU_NVML_EVENT_ECC_SINGLE_BIT, /* nvmlEventTypeSingleBitEccError */
        VGPU_NVML_EVENT_ECC_DOUBLE_BIT, /* nvmlEventTypeDoubleBitEccError */
};

struct vgpu_nvml_event {
        char bdf[VGPU_BDF_MAX];
        enum vgpu_nvml_event_type type;
        uint64_t data;      /* the Xid number for VGPU_NVML_EVENT_XID, NVML's event data otherwise */
        uint64_t time_usec; /* CLOCK_REALTIME when read: NVML's events carry no time */
};

struct vgpu_nvml_events;

/*
 * Watch every NVIDIA physical GPU in host (any scan) that NVML knows. Returns 0 with *ret NULL
 * when there is nothing to watch (no NVML, no NVIDIA GPU, or none that takes events): not an
 * error. -errno with *err filled otherwise.
 */
int vgpu_nvml_events_open(const struct vgpu_host *host, struct vgpu_nvml_events **ret,
                          struct vgpu_error *err);
/* How many GPUs the watcher registered. */
size_t vgpu_nvml_events_n_gpus(const struct vgpu_nvml_events *w);
/* The events that arrived since the last call, oldest first (free(*ret) after); never waits. */
int vgpu_nvml_events_read(struct vgpu_nvml_events *w, struct vgpu_nvml_event **ret, size_t *ret_n,
                          struct vgpu_error *err);
void vgpu_nvml_events_free(struct vgpu_nvml_events *w);
VGPU_DEFINE_FREEP(struct vgpu_nvml_events, vgpu_nvml_events_free)

/*
 * What a well-known Xid means, from NVIDIA's Xid catalogue ("GPU has fallen off the bus" for
 * 79), NULL for one not in our table. *ret_critical (may be NULL) is set true for the Xids after
 * which the GPU cannot be trusted until it is reset (48, 62, 64, 74, 79, 92, 94, 95, 119, 120,
 * 140), false otherwise, including for unknown ones.
 */
const char *vgpu_xid_describe(uint64_t xid, bool *ret_critical);

#ifdef __cplusplus
}
#endif
