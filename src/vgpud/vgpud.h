/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vgpud.h — the daemon's one context struct and what its parts offer each other.
 *
 * Everything runs on one thread in one sd-event loop: the API listeners (libmicrohttpd in
 * external-poll mode), the collector's timer, signals, the watchdog and hook children. A request
 * is handled to its end before the loop looks at anything else, so a SIGTERM that arrives during
 * an apply is seen after the apply has completed (or rolled back) and its reply is queued.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "collect-sensors.h"
#include "conf.h"
#include "vgpu/host.h"
#include "vgpu/nvml-events.h"
#include "vgpu/slice.h"
#include "vgpu/telemetry.h"

enum vgpud_event_kind {
        /* the telemetry events, in vgpu_telemetry_event_kind's order */
        EV_THERMAL_WARN,
        EV_THERMAL_CRITICAL,
        EV_THERMAL_RECOVERED,
        EV_LINK_DEGRADED,
        EV_LINK_RECOVERED,
        EV_GPU_ADDED,
        EV_GPU_REMOVED,
        /* the daemon's own */
        EV_PARENT_ADDED,
        EV_RESTORE,
        EV_RESTORE_FAILED,
        EV_INSTANCE_CREATED,
        EV_INSTANCE_REMOVED,
        EV_APPLY,
        EV_APPLY_FAILED,
        EV_ACCESS_DENIED,
        EV_CONFIG_RELOADED,
        EV_CONFIG_REJECTED,
        EV_POLL_FAILED,
        EV_HOOK_FAILED,
        EV_XID,       /* an Xid error NVML reported (nvml-events.h; collect-xid.c) */
        EV_ECC,       /* an ECC error event from NVML (collect-xid.c) */
        EV_BMC_EVENT, /* a new entry in the BMC's System Event Log (collect-sensors.c) */
        _EV_MAX,
};

#define EVENTS_KEPT        512
/* access_denied events have a ring of their own: whoever may not do anything can still make
 * denials, and they must not push the events that matter (applies, restores, Xids) out */
#define DENIALS_KEPT       64
/* and are coalesced per caller (a uid, a TCP address): one event per minute, the rest counted */
#define DENIAL_PEERS       64
#define DENIAL_WINDOW_USEC (60 * 1000000ull)
#define HOOKS_MAX          4 /* hooks running at once */

struct vgpud_event {
        uint64_t seq;       /* 1, 2, ...: clients ask for "since" one */
        uint64_t time_usec; /* CLOCK_REALTIME */
        enum vgpud_event_kind kind;
        int priority; /* syslog priority it was logged at */
        char bdf[VGPU_BDF_MAX];
        char uuid[VGPU_UUID_MAX];
        int temperature_c; /* VGPU_TEMP_UNKNOWN when not a thermal event */
        /* in the event, not malloc'd: keeping an event must not need memory (one may be about the
         * lack of it), and a copy that failed left "message": null in /v1/events */
        char message[1024];
};

/* A caller's denials in the current window (events.c). */
struct vgpud_denial_peer {
        char key[64];               /* "uid 65534", "client 127.0.0.1"; "" unused */
        uint64_t window_start_usec; /* CLOCK_MONOTONIC of its last access_denied event */
        uint64_t suppressed;        /* denials since then not kept as events */
};

struct listener;
struct fleet;

struct vgpud {
        sd_event *event;
        struct vgpud_config *config;
        char *config_path; /* as given, or the default (a host path) */
        bool config_host_path;
        bool have_group; /* config->group exists on this host */
        gid_t group_gid;
        char *api_token; /* read from config->api_token_file */

        struct listener *local, *tcp_api, *metrics;

        /* the collector: the latest snapshot and what was distilled from it */
        struct vgpu_host *host;
        char **domains;               /* VM of each host->instances[i], or NULL (no libvirt) */
        struct vgpu_host *types_host; /* the types, read again only when the carve-up changes */
        uint64_t types_signature;     /* of the instances and parents when they were read */
        uint64_t types_usec;          /* CLOCK_MONOTONIC */
        struct vgpu_telemetry telemetry;
        struct vgpu_slice_status *slices; /* software slices and their usage at the last poll (slices.c) */
        size_t n_slices;
        struct vgpu_nvml_events *nvml_events; /* Xid/ECC watcher, NULL without NVML; collect.c */
        uint64_t nvml_events_signature;       /* of the GPUs it watches: made again when they change */
        struct vgpud_sensors sensors;         /* hwmon (libsensors) and BMC sensors, the SEL reader */
        sd_event_source *poll_timer;
        uint64_t last_poll_usec; /* CLOCK_REALTIME of the last poll */
        uint64_t last_poll_duration_usec;
        uint64_t polls;
        bool poll_failed;

        /* events: a ring of the last EVENTS_KEPT, one of the last DENIALS_KEPT access
         * denials (each in seq order from n_*_kept on), and counters of all */
        struct vgpud_event events[EVENTS_KEPT];
        struct vgpud_event denials[DENIALS_KEPT];
        uint64_t n_events_kept, n_denials_kept;
        struct vgpud_denial_peer denial_peers[DENIAL_PEERS];
        uint64_t next_seq;
        uint64_t events_total[_EV_MAX];

        struct { /* the last /metrics text, and what it was made from */
                char *text;
                size_t size;
                uint64_t polls, seq;
                uint64_t render_usec; /* how long making it took */
        } metrics_cache;

        char status[160]; /* the last STATUS= sent to systemd */
        sd_event_source *watchdog_timer;
        sd_event_source *uevents; /* the kernel's uevent socket (collect.c) */
        uint64_t checks_logged;   /* which doctor checks were last logged as not passing */
        sd_event_source *hooks[HOOKS_MAX];
        unsigned hooks_running;
        struct fleet *fleet; /* [fleet]: NULL when not in a fleet (fleet.h) */
        bool stopping;
};

/* events.c */
const char *event_kind_to_string(enum vgpud_event_kind k);
/* Log (with fields) and keep an event; bdf/uuid may be NULL. */
void event_add(struct vgpud *d, enum vgpud_event_kind kind, int priority, const char *bdf, const char *uuid,
               int temperature_c, const char *fmt, ...) _printf_(7, 8);
/* An access denial to peer (the caller's stable part: "uid 65534"): an access_denied event the
 * first time in DENIAL_WINDOW_USEC, else only counted (and logged at debug); the next event
 * says how many were not kept. */
void event_access_denied(struct vgpud *d, const char *peer, const char *fmt, ...) _printf_(3, 4);
/* The kept event seq, or NULL when it is no longer (or never was) kept. */
const struct vgpud_event *event_get(const struct vgpud *d, uint64_t seq);
/* Forget the kept events (the counters stay). */
void events_clear(struct vgpud *d);

/* hook.c: run the configured hook for a telemetry event (no-op without one). */
void hook_run(struct vgpud *d, const struct vgpu_telemetry_event *e, const struct vgpu_gpu_telemetry *g);
/* ... and for a critical Xid (VGPU_EVENT=xid, VGPU_XID=N, VGPU_STATE=degraded) */
void hook_run_xid(struct vgpud *d, const char *bdf, uint64_t xid, const char *message,
                  const struct vgpu_gpu_telemetry *g);
void hook_stop(struct vgpud *d);

/* collect.c */
int collect_start(struct vgpud *d);
/* Poll now: scan, refresh telemetry, log events, restore appearing parents. */
int collect_poll(struct vgpud *d);
/* Poll again after delay_usec (0: as soon as the loop is free): after a change, or a uevent. */
void collect_soon(struct vgpud *d, uint64_t delay_usec);
/* Restore the recorded slices and the saved state (vgpu_restore(), as `vgpuctl apply --restore`). */
int collect_restore(struct vgpud *d, const char *why);
void collect_stop(struct vgpud *d);
/* Tell systemd (STATUS=) how many GPUs are degraded, when that changed. */
void collect_notify_status(struct vgpud *d);

/* collect-xid.c: read NVML's Xid/ECC events into events (a critical Xid degrades its GPU);
 * after the telemetry of host was updated. */
void collect_xid_poll(struct vgpud *d, const struct vgpu_host *host);
void collect_xid_stop(struct vgpud *d);

/* metrics.c: the Prometheus text exposition of the latest poll; _get returns a copy of the
 * cached text, rendered again only after a poll or an event. */
/* slices.c: read the slices' usage (each poll) and their series */
void slices_collect(struct vgpud *d);
void slices_free(struct vgpud *d);
void slices_metrics(FILE *f, const struct vgpud *d);

int metrics_render(const struct vgpud *d, char **ret, size_t *ret_size);
int metrics_get(struct vgpud *d, char **ret, size_t *ret_size);
void metrics_clear(struct vgpud *d);

/* The health of a GPU (a VF answers for its PF): NULL before its first poll. */
const struct vgpu_gpu_telemetry *vgpud_gpu_health(const struct vgpud *d, const struct vgpu_gpu *g);
/* "degraded" when hot (warn or critical), slowed by NVML's thermal slowdown, after a critical Xid,
 * or its link is narrower than it can be; "ok"; "unknown". */
const char *vgpud_gpu_state(const struct vgpu_gpu_telemetry *t);

uint64_t now_usec(clockid_t clock);
