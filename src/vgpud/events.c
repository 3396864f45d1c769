/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * events.c — what happened, three ways: logged (journald fields VGPU_EVENT, VGPU_BDF,
 * VGPU_INSTANCE), kept in a ring for GET /v1/events, and counted for vgpu_events_total.
 */
#include <inttypes.h>
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
        char raw[sizeof(d->events[0].message)], msg[sizeof(d->events[0].message)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        /* messages quote what callers sent (a request's path): kept as one line of UTF-8 */
        log_escape(raw, msg, sizeof(msg));

        log_full(priority,
                 &(struct log_fields){ .bdf = bdf, .uuid = uuid, .event = event_kind_to_string(kind) }, "%s",
                 msg);
        d->events_total[kind]++;

        struct vgpud_event *e = kind == EV_ACCESS_DENIED ? &d->denials[d->n_denials_kept++ % DENIALS_KEPT]
                                                         : &d->events[d->n_events_kept++ % EVENTS_KEPT];
        *e = (struct vgpud_event){
                .seq = ++d->next_seq,
                .time_usec = now_usec(CLOCK_REALTIME),
                .kind = kind,
                .priority = priority,
                .temperature_c = temperature_c,
        };
        memcpy(e->message, msg, sizeof(msg));
        snprintf(e->bdf, sizeof(e->bdf), "%s", strempty(bdf));
        snprintf(e->uuid, sizeof(e->uuid), "%s", strempty(uuid));
}

void event_access_denied(struct vgpud *d, const char *peer, const char *fmt, ...) {
        char msg[sizeof(d->events[0].message)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        peer = strempty(peer);

        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct vgpud_denial_peer *p = NULL, *oldest = &d->denial_peers[0];
        for (size_t i = 0; i < DENIAL_PEERS && !p; i++) {
                struct vgpud_denial_peer *c = &d->denial_peers[i];
                if (c->key[0] && strncmp(c->key, peer, sizeof(c->key) - 1) == 0)
                        p = c;
                else if (!c->key[0] || (oldest->key[0] && c->window_start_usec < oldest->window_start_usec))
                        oldest = c;
        }
        if (p && now - p->window_start_usec < DENIAL_WINDOW_USEC) {
                p->suppressed++;
                d->events_total[EV_ACCESS_DENIED]++;
                log_debug("%s (not kept as an event: %" PRIu64 " from %s this minute)", msg,
                          p->suppressed + 1, peer);
                return;
        }
        /* a caller not seen this minute takes the slot of the one seen longest ago */
        uint64_t before = p ? p->suppressed : 0;
        if (!p) {
                p = oldest;
                snprintf(p->key, sizeof(p->key), "%s", peer);
        }
        p->window_start_usec = now;
        p->suppressed = 0;
        if (before)
                event_add(d, EV_ACCESS_DENIED, LOG_WARNING, NULL, NULL, VGPU_TEMP_UNKNOWN,
                          "%s (and %" PRIu64 " more denied to %s before, not listed)", msg, before, peer);
        else
                event_add(d, EV_ACCESS_DENIED, LOG_WARNING, NULL, NULL, VGPU_TEMP_UNKNOWN, "%s", msg);
}

const struct vgpud_event *event_get(const struct vgpud *d, uint64_t seq) {
        for (size_t i = 0; i < EVENTS_KEPT; i++)
                if (seq && d->events[i].seq == seq)
                        return &d->events[i];
        for (size_t i = 0; i < DENIALS_KEPT; i++)
                if (seq && d->denials[i].seq == seq)
                        return &d->denials[i];
        return NULL;
}

void events_clear(struct vgpud *d) {
        memset(d->events, 0, sizeof(d->events));
        memset(d->denials, 0, sizeof(d->denials));
        memset(d->denial_peers, 0, sizeof(d->denial_peers));
        d->n_events_kept = d->n_denials_kept = 0;
}
