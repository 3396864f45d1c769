/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * collect-xid.c — the Xid collector: NVIDIA's numbered fault reports (and ECC error events),
 * drained from NVML on every poll without waiting, each logged and kept as an event.
 *
 * A critical Xid (vgpu_xid_describe(): double-bit ECC, GPU off the bus, GSP error, ...) marks its
 * GPU degraded with reason "xid", is logged at LOG_CRIT and runs the hook. The mark stays until the GPU is
 * gone from a poll or has no driver bound at one (reset by remove/rescan, driver reload), or
 * vgpud restarts: NVIDIA's remedy for these is a reset, and until then the GPU's answers are
 * not to be trusted. One NVML event set watches all GPUs; when the set of GPUs changes it is
 * made again, since a GPU that came back has a new NVML handle.
 */
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "snmp-agent.h"
#include "vgpud.h"

/* PFs by BDF, hashed: the watcher is made again when this changes. */
static uint64_t gpu_set_signature(const struct vgpu_host *host) {
        uint64_t h = 14695981039346656037ULL;
        for (size_t i = 0; i < host->n_gpus; i++)
                for (const char *s = host->gpus[i].bdf; !host->gpus[i].physfn[0] && *s; s++)
                        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
        return h;
}

static void report(struct vgpud *d, const struct vgpu_nvml_event *e) {
        /* the events' uuid field is for vGPU instances: none here (the GPU's is in /v1/gpus) */
        if (e->type != VGPU_NVML_EVENT_XID) {
                bool dbe = e->type == VGPU_NVML_EVENT_ECC_DOUBLE_BIT;
                /* single-bit errors were corrected; a double-bit one also comes as Xid 48 */
                event_add(d, EV_ECC, dbe ? LOG_ERR : LOG_INFO, e->bdf, NULL, VGPU_TEMP_UNKNOWN,
                          "%s ECC error on %s", dbe ? "double-bit (uncorrected)" : "single-bit (corrected)",
                          e->bdf);
                return;
        }
        bool critical;
        const char *meaning = vgpu_xid_describe(e->data, &critical);
        char message[256];
        snprintf(message, sizeof(message), "Xid %" PRIu64 " on %s (%s)%s", e->data, e->bdf,
                 meaning ? meaning : "not in vgpud's table of Xids",
                 critical ? ": GPU degraded until it is reset" : "");
        event_add(d, EV_XID, critical ? LOG_CRIT : LOG_WARNING, e->bdf, NULL, VGPU_TEMP_UNKNOWN, "%s",
                  message);
        if (!critical)
                return;
        snmp_agent_notify(d, SNMP_NOTIFY_XID_CRITICAL, e->bdf, VGPU_TEMP_UNKNOWN, e->data, message);
        /* the hook hears the state the GPU was in before this Xid (ok, or degraded already) */
        const struct vgpu_gpu_telemetry *g = vgpu_telemetry_find(&d->telemetry, e->bdf);
        struct vgpu_gpu_telemetry before = g ? *g : (struct vgpu_gpu_telemetry){};
        (void) vgpu_telemetry_note_xid(&d->telemetry, e->bdf, e->data, e->time_usec);
        hook_run_xid(d, e->bdf, e->data, message, g ? &before : NULL);
}

void collect_xid_poll(struct vgpud *d, const struct vgpu_host *host) {
        if (!d->config->collect_nvml) {
                collect_xid_stop(d);
                return;
        }
        struct vgpu_error err = {};
        /* first what the current set holds, so that making a new one loses nothing */
        if (d->nvml_events) {
                struct vgpu_nvml_event *events = NULL;
                size_t n = 0;
                if (vgpu_nvml_events_read(d->nvml_events, &events, &n, &err) < 0)
                        log_warning("reading NVML events: %s", err.message);
                for (size_t i = 0; i < n; i++)
                        report(d, &events[i]);
                free(events);
        }
        uint64_t sig = gpu_set_signature(host);
        if (d->nvml_events_signature == sig && d->polls > 0)
                return;
        vgpu_nvml_events_free(d->nvml_events);
        d->nvml_events = NULL;
        d->nvml_events_signature = sig;
        if (vgpu_nvml_events_open(host, &d->nvml_events, &err) < 0) {
                /* out of memory, its one error: tried again at the next poll, not only once the
                 * GPUs change (which may be never: Xids would go unseen until a restart) */
                log_warning("watching NVML events: %s", err.message);
                d->nvml_events_signature = 0;
        } else if (d->nvml_events)
                log_debug("watching %zu GPUs for Xid and ECC events",
                          vgpu_nvml_events_n_gpus(d->nvml_events));
}

void collect_xid_stop(struct vgpud *d) {
        vgpu_nvml_events_free(d->nvml_events);
        d->nvml_events = NULL;
        d->nvml_events_signature = 0;
}
