/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * events.c — what happened, three ways: logged (journald fields VGPU_EVENT, VGPU_BDF,
 * VGPU_INSTANCE), kept in a ring for GET /v1/events, and counted for vgpu_events_total.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "vgpud.h"

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

const char *event_kind_to_string(enum vgpud_event_kind k) {
        static const char *const names[_EV_MAX] = {
                [EV_PARENT_ADDED] = "parent_added",
                [EV_RESTORE] = "restore",
                [EV_RESTORE_FAILED] = "restore_failed",
                [EV_INSTANCE_CREATED] = "instance_created",
                [EV_INSTANCE_REMOVED] = "instance_removed",
                [EV_APPLY] = "apply",
                [EV_APPLY_FAILED] = "apply_failed",
                [EV_ACCESS_DENIED] = "access_denied",
                [EV_CONFIG_RELOADED] = "config_reloaded",
                [EV_CONFIG_REJECTED] = "config_rejected",
                [EV_POLL_FAILED] = "poll_failed",
                [EV_HOOK_FAILED] = "hook_failed",
                [EV_XID] = "xid",
                [EV_ECC] = "ecc",
                [EV_BMC_EVENT] = "bmc_event",
        };
        if (k < EV_PARENT_ADDED)
                return vgpu_telemetry_event_kind_to_string((enum vgpu_telemetry_event_kind) k);
        return (unsigned) k < _EV_MAX ? names[k] : "unknown";
}

void event_add(struct vgpud *d, enum vgpud_event_kind kind, int priority, const char *bdf, const char *uuid,
               int temperature_c, const char *fmt, ...) {
        char msg[sizeof(d->events[0].message)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        log_full(priority, &(struct log_fields) { .bdf = bdf, .uuid = uuid, .event = event_kind_to_string(kind) }, "%s", msg);
        d->events_total[kind]++;

        struct vgpud_event *e = &d->events[d->next_seq % EVENTS_KEPT];
        *e = (struct vgpud_event) {
                .seq = ++d->next_seq, .time_usec = now_usec(CLOCK_REALTIME), .kind = kind, .priority = priority,
                .temperature_c = temperature_c,
        };
        memcpy(e->message, msg, sizeof(msg));
        snprintf(e->bdf, sizeof(e->bdf), "%s", strempty(bdf));
        snprintf(e->uuid, sizeof(e->uuid), "%s", strempty(uuid));
}

void events_clear(struct vgpud *d) {
        memset(d->events, 0, sizeof(d->events));
}
