/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * collect.c — the collectors: on every poll interval one host scan (NVML through the snapshot,
 * hwmon and PCIe link through its details) refreshes the telemetry, the thermal policy turns
 * readings into events and hooks, and parents that were not there before get the saved state
 * restored — on exactly those parents. A uevent (a driver binding, a module loading) only makes
 * the next poll come sooner: the scan is the one source of truth, so a missed or duplicated
 * uevent changes nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <systemd/sd-daemon.h>

#include "vgpu/root.h"
#include "log.h"
#include "vgpu/apply.h"
#include "vgpu/assign.h"
#include "vgpu/config.h"
#include "snmp-agent.h"
#include "fleet.h"
#include "vgpud.h"

/* Types cost most of a scan on big hosts (12,288 on 512 VFs: 80-150 ms of CPU), and their counts
 * only move when instances or parents do, so they are read again only then, or after this long
 * in case a driver changed them behind our back. Only /metrics uses these (GET /v1/types reads
 * them fresh); at one minute this safety net was half of the daemon's idle CPU on such a host. */
#define TYPES_MAX_AGE_USEC (600 * 1000000ULL)

static unsigned scan_flags(const struct vgpud_config *c) {
        /* parents: to see them appear; details: hwmon and PCIe link */
        return VGPU_SCAN_INSTANCES | VGPU_SCAN_PARENTS | (c->collect_nvml ? VGPU_SCAN_NVML : 0) |
               (c->collect_hwmon || c->collect_pcie ? VGPU_SCAN_DETAILS : 0);
}

/* FNV-1a over s and its NUL, so that "ab","c" and "a","bc" differ. */
static uint64_t fnv(uint64_t h, const char *s) {
        s = strempty(s);
        do
                h = (h ^ (unsigned char) *s) * 1099511628211ULL;
        while (*s++);
        return h;
}

/* What the type counts depend on: which instances and parents exist. */
static uint64_t carve_up_signature(const struct vgpu_host *host) {
        uint64_t h = 14695981039346656037ULL;
        for (size_t i = 0; i < host->n_instances; i++)
                h = fnv(fnv(fnv(h, host->instances[i].uuid), host->instances[i].parent),
                        host->instances[i].type);
        for (size_t i = 0; i < host->n_parents; i++)
                h = fnv(h, host->parents[i].name);
        return h;
}

static void refresh_types(struct vgpud *d, const struct vgpu_host *host) {
        uint64_t sig = carve_up_signature(host), now = now_usec(CLOCK_MONOTONIC);
        if (d->types_host && sig == d->types_signature && now - d->types_usec < TYPES_MAX_AGE_USEC)
                return;
        struct vgpu_error err = {};
        struct vgpu_host *types;
        if (vgpu_host_scan(VGPU_SCAN_TYPES, &types, &err) < 0) {
                log_warning("reading the vGPU types failed (keeping the last counts): %s", err.message);
                return;
        }
        vgpu_host_free(d->types_host);
        d->types_host = types;
        d->types_signature = sig;
        d->types_usec = now;
}

static unsigned telemetry_sources(const struct vgpud_config *c) {
        return (c->collect_nvml ? VGPU_TELEMETRY_NVML : 0) | (c->collect_hwmon ? VGPU_TELEMETRY_HWMON : 0) |
               (c->collect_pcie ? VGPU_TELEMETRY_PCIE : 0);
}

static int limits_for(const struct vgpu_gpu *g, const char *model, struct vgpu_thermal_limits *ret,
                      void *userdata) {
        const struct vgpud_config *c = userdata;
        char ids[16];
        snprintf(ids, sizeof(ids), "%04x:%04x", g->vendor_id, g->device_id);
        *ret = *vgpud_config_limits_for(c, g->bdf, model, ids);
        return 0;
}

const struct vgpu_gpu_telemetry *vgpud_gpu_health(const struct vgpud *d, const struct vgpu_gpu *g) {
        return vgpu_telemetry_find(&d->telemetry, g->physfn[0] ? g->physfn : g->bdf);
}

const char *vgpud_gpu_state(const struct vgpu_gpu_telemetry *t) {
        if (!t)
                return "unknown";
        if (t->thermal == VGPU_THERMAL_WARN || t->thermal == VGPU_THERMAL_CRITICAL || t->link_degraded ||
            vgpu_telemetry_thermal_slowdown(t) || t->xid)
                return "degraded";
        return "ok";
}

/* The VM holding each instance, when libvirt is installed and answers; NULL otherwise. */
static char **instance_domains(const struct vgpu_host *host) {
        struct vgpu_error err = {};
        struct vgpu_virt *v = NULL;
        char **domains = NULL;
        if (host->n_instances == 0 ||
            vgpu_virt_open(NULL, VGPU_VIRT_PROBE | VGPU_VIRT_READ_ONLY, &v, &err) < 0 || !v)
                return NULL;
        if (vgpu_instance_domains(v, host, &domains, &err) < 0)
                log_debug("cannot tell which VMs hold the vGPUs: %s", err.message);
        vgpu_virt_free(v);
        return domains;
}

/* Restore the saved state (vgpu_restore): all of it with the recorded slices (parents NULL),
 * or only on the parents named, which leaves every other parent alone and the saved file as it
 * is. Each outcome is an event. */
static int restore(struct vgpud *d, const char *why, const char *const *parents, size_t n_parents) {
        struct vgpu_error err = {};
        struct vgpu_restore_report report;
        int r = vgpu_restore(parents, n_parents, 0, NULL, &report, &err);
        if (report.slices_error.code < 0)
                event_add(d, EV_RESTORE_FAILED, LOG_ERR, NULL, NULL, VGPU_TEMP_UNKNOWN,
                          "%s: restoring the slices failed: %s", why, report.slices_error.message);
        else if (report.n_slices > 0)
                event_add(d, EV_RESTORE, LOG_NOTICE, NULL, NULL, VGPU_TEMP_UNKNOWN,
                          "%s: restored %u slice%s from %s", why, report.n_slices,
                          report.n_slices == 1 ? "" : "s", VGPU_SLICE_RECORDS);
        if (report.nothing_saved) {
                log_debug("%s: nothing to restore (%s%s does not exist)", why, vgpu_root_prefix(),
                          VGPU_STATE_CONFIG);
                return (int) report.n_slices;
        }
        /* which parents, in words, and the one a single-parent restore is about (VGPU_BDF) */
        char on[512] = "";
        for (size_t i = 0, n = 0; parents && i < n_parents && n < sizeof(on); i++)
                n += (size_t) snprintf(on + n, sizeof(on) - n, "%s%s", i ? ", " : " on ", parents[i]);
        const char *bdf = parents && n_parents == 1 ? parents[0] : NULL;
        if (r < 0)
                event_add(d, EV_RESTORE_FAILED, LOG_ERR, bdf, NULL, VGPU_TEMP_UNKNOWN,
                          "%s: restoring %s%s failed: %s", why, VGPU_STATE_CONFIG, on, err.message);
        else
                event_add(d, EV_RESTORE, r > 0 ? LOG_NOTICE : LOG_INFO, bdf, NULL, VGPU_TEMP_UNKNOWN,
                          "%s: restored %s%s: %d change%s", why, VGPU_STATE_CONFIG, on, r, r == 1 ? "" : "s");
        const struct vgpu_plan *plan = report.plan;
        for (size_t i = 0; plan && i < plan->n_actions; i++)
                log_debug("%s: %s %s on %s: %s", why, vgpu_action_kind_to_string(plan->actions[i].kind),
                          plan->actions[i].spec.uuid, strempty(plan->actions[i].spec.parent),
                          strempty(plan->actions[i].detail));
        vgpu_plan_free(report.plan);
        return r < 0 ? r : r + (int) report.n_slices;
}

int collect_restore(struct vgpud *d, const char *why) {
        return restore(d, why, NULL, 0);
}

/* Parents in host that prev did not have (or had in an earlier registration), logged each; *ret
 * gets their names. -ENOMEM before any is logged. */
static int new_parents(struct vgpud *d, const struct vgpu_host *prev, const struct vgpu_host *host,
                       const char ***ret) {
        int n = 0;
        const char **names = calloc(host->n_parents + 1, sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < host->n_parents; i++) {
                const char *name = host->parents[i].name;
                const struct vgpu_parent *was = vgpu_host_find_parent(prev, name);
                /* the same name is not enough: a module reloaded between two polls (rmmod and
                 * modprobe within one interval) brings the parent back empty, under a new
                 * generation */
                if (was && was->generation == host->parents[i].generation)
                        continue;
                event_add(d, EV_PARENT_ADDED, LOG_NOTICE, name, NULL, VGPU_TEMP_UNKNOWN,
                          "%s: vGPU parent appeared", name);
                names[n++] = name;
        }
        *ret = names;
        return n;
}

int collect_poll(struct vgpud *d) {
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        int r = vgpu_host_scan(scan_flags(d->config), &host, &err);
        if (r < 0) {
                /* once per failure streak: a host that stays unreadable must not flood the log */
                if (!d->poll_failed)
                        event_add(d, EV_POLL_FAILED, LOG_ERR, NULL, NULL, VGPU_TEMP_UNKNOWN,
                                  "scanning the host failed: %s", err.message);
                d->poll_failed = true;
                return r;
        }
        d->poll_failed = false;
        sensors_collect_hwmon(d, host); /* libsensors' GPU temperatures into the snapshot's hwmon fields */

        struct vgpu_telemetry_event *events = NULL;
        size_t n_events = 0;
        r = vgpu_telemetry_update(&d->telemetry, host, telemetry_sources(d->config), &d->config->thermal,
                                  limits_for, d->config, &events, &n_events, &err);
        if (r < 0) {
                log_error("telemetry: %s", err.message);
                vgpu_host_free(host);
                return r;
        }
        for (size_t i = 0; i < n_events; i++) {
                const struct vgpu_telemetry_event *e = &events[i];
                bool bad = e->kind == VGPU_EVENT_THERMAL_WARN || e->kind == VGPU_EVENT_THERMAL_CRITICAL ||
                           e->kind == VGPU_EVENT_LINK_DEGRADED;
                int prio = e->kind == VGPU_EVENT_THERMAL_CRITICAL ? LOG_CRIT : bad ? LOG_WARNING : LOG_NOTICE;
                event_add(d, (enum vgpud_event_kind) e->kind, prio, e->bdf, NULL, e->temperature_c, "%s",
                          e->message);
                if (e->kind == VGPU_EVENT_THERMAL_WARN || e->kind == VGPU_EVENT_THERMAL_CRITICAL)
                        snmp_agent_notify(d,
                                          e->kind == VGPU_EVENT_THERMAL_WARN ? SNMP_NOTIFY_THERMAL_WARNING
                                                                             : SNMP_NOTIFY_THERMAL_CRITICAL,
                                          e->bdf, e->temperature_c, 0, e->message);
                if (e->kind <= VGPU_EVENT_LINK_RECOVERED)
                        hook_run(d, e, vgpu_telemetry_find(&d->telemetry, e->bdf));
        }
        free(events);
        collect_xid_poll(d, host); /* NVML's Xid and ECC events */
        sensors_collect_ipmi(d);   /* BMC sensors; new SEL entries as events */

        _cleanup_free_ const char **appeared = NULL;
        int n_appeared = d->host ? new_parents(d, d->host, host, &appeared) : 0;
        if (n_appeared < 0) {
                /* the snapshot stays the last one, so the next poll sees these parents appear (and
                 * restores them): taking this one would lose them for good */
                log_error("poll: %s", strerror(-n_appeared));
                vgpu_host_free(host);
                return n_appeared;
        }
        vgpu_instance_domains_free(d->domains, d->host ? d->host->n_instances : 0);
        vgpu_host_free(d->host);
        d->host = host;
        d->domains = instance_domains(host);
        refresh_types(d, host);
        slices_collect(d);
        d->polls++;
        d->last_poll_usec = now_usec(CLOCK_REALTIME);
        d->last_poll_duration_usec = now_usec(CLOCK_MONOTONIC) - start;
        log_debug("poll %" PRIu64 ": %zu GPUs, %zu parents, %zu instances in %" PRIu64 " ms", d->polls,
                  host->n_gpus, host->n_parents, host->n_instances, d->last_poll_duration_usec / 1000);

        fleet_update_inventory(d); /* gpus/<host>/<gpu> when in a fleet and something changed */

        /* exactly the parents that appeared: a parent someone emptied by hand stays as it is */
        if (n_appeared > 0 && d->config->restore_on_appear &&
            restore(d, "parent appeared", appeared, (size_t) n_appeared) > 0)
                collect_soon(d, 0); /* show what the restore created */
        return 0;
}

void collect_notify_status(struct vgpud *d) {
        if (!getenv("NOTIFY_SOCKET"))
                return;
        size_t degraded = 0;
        for (size_t i = 0; i < d->telemetry.n_gpus; i++)
                degraded += streq(vgpud_gpu_state(&d->telemetry.gpus[i]), "degraded");
        char status[sizeof(d->status)];
        snprintf(status, sizeof(status), "STATUS=%zu GPUs (%zu degraded), %zu vGPU instances%s",
                 d->telemetry.n_gpus, degraded, d->host ? d->host->n_instances : 0,
                 d->poll_failed ? "; scanning the host fails" : "");
        if (streq(status, d->status))
                return; /* only changes: a poll that finds the same host says nothing */
        memcpy(d->status, status, sizeof(status));
        sd_notify(0, status);
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vgpud *d = userdata;
        (void) collect_poll(d);
        collect_notify_status(d);
        /* from now, not from when it was due: a slow poll must not make the next one immediate */
        sd_event_source_set_time(s, now_usec(CLOCK_MONOTONIC) + d->config->poll_interval_usec);
        sd_event_source_set_time_accuracy(s, d->config->poll_interval_usec / 20);
        (void) usec;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

void collect_soon(struct vgpud *d, uint64_t delay_usec) {
        if (!d->poll_timer)
                return;
        uint64_t due = 0, when = now_usec(CLOCK_MONOTONIC) + delay_usec;
        if (sd_event_source_get_time(d->poll_timer, &due) >= 0 && due <= when)
                return;
        sd_event_source_set_time(d->poll_timer, when);
        /* soon means soon: the regular accuracy (a twentieth of the interval, 30 s for 10 min)
         * would let the kernel batch this wakeup far past the delay */
        sd_event_source_set_time_accuracy(d->poll_timer, 1000);
        sd_event_source_set_enabled(d->poll_timer, SD_EVENT_ONESHOT);
}

/* Does this uevent mean a parent may have come or gone? A PCI function bound or unbound (a GPU
 * driver registers its parents in probe; VFs appear), a module loaded or unloaded (the mdev
 * samples, vendor vGPU modules: the event comes as the module starts, its parents a moment
 * later), or mdev_bus itself. Instances (subsystem mdev) are ours or the scan's business. */
static bool uevent_matters(const char *msg, size_t n) {
        const char *action = NULL, *subsystem = NULL;
        for (const char *p = msg; p < msg + n; p += strlen(p) + 1) {
                if (strncmp(p, "ACTION=", 7) == 0)
                        action = p + 7;
                else if (strncmp(p, "SUBSYSTEM=", 10) == 0)
                        subsystem = p + 10;
        }
        if (!action || !subsystem)
                return false;
        return (streq(action, "add") || streq(action, "remove") || streq(action, "bind") ||
                streq(action, "unbind")) &&
               (streq(subsystem, "pci") || streq(subsystem, "module") || streq(subsystem, "mdev_bus"));
}

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct vgpud *d = userdata;
        char buf[8192 + 1];
        (void) s;
        (void) revents;
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                if (n <= 0)
                        return 0; /* drained (or ENOBUFS after a burst: the poll catches up) */
                buf[n] = '\0';
                /* "ACTION@DEVPATH\0KEY=VALUE\0...": libudev's own messages start "libudev" */
                if (!strchr(buf, '@') || !uevent_matters(buf, (size_t) n))
                        continue;
                log_debug("uevent %s: polling soon", buf);
                /* a burst (32 VFs) ends up in one poll a moment later */
                collect_soon(d, 200 * 1000);
        }
}

/*
 * The kernel's uevents, straight from its netlink group, not udev's rebroadcast
 * (sd_device_monitor): a uevent is only a hint to poll sooner, so udev's rules and database
 * add nothing here, while the kernel group works where no udevd runs (containers, initramfs,
 * the busybox test guest) and needs no privilege. Only on the real root: the kernel's
 * uevents say nothing about a fixture tree under VGPU_ROOT.
 */
static void uevents_start(struct vgpud *d) {
        if (vgpu_root_prefix()[0])
                return;
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 /* the kernel's */ };
        int r = fd < 0 ? -errno : bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        if (r >= 0)
                r = sd_event_add_io(d->event, &d->uevents, fd, EPOLLIN, on_uevent, d);
        if (r >= 0)
                r = sd_event_source_set_io_fd_own(d->uevents, true);
        if (r < 0) {
                log_warning("no uevents (%s): parents that appear are seen at the next poll", strerror(-r));
                d->uevents = sd_event_source_disable_unref(d->uevents);
                if (fd >= 0)
                        close(fd); /* the source never came to own it */
                return;
        }
        log_debug("listening to the kernel's uevents");
}

int collect_start(struct vgpud *d) {
        int r = sd_event_add_time(d->event, &d->poll_timer, CLOCK_MONOTONIC,
                                  now_usec(CLOCK_MONOTONIC) + d->config->poll_interval_usec,
                                  /* accuracy: let the kernel batch our wakeups with others' */
                                  d->config->poll_interval_usec / 20, on_poll, d);
        if (r < 0)
                return r;
        uevents_start(d);
        return 0;
}

void collect_stop(struct vgpud *d) {
        d->poll_timer = sd_event_source_unref(d->poll_timer);
        d->uevents = sd_event_source_disable_unref(d->uevents);
        vgpu_instance_domains_free(d->domains, d->host ? d->host->n_instances : 0);
        d->domains = NULL;
        vgpu_host_free(d->host);
        d->host = NULL;
        vgpu_host_free(d->types_host);
        d->types_host = NULL;
        slices_free(d);
        vgpu_telemetry_free(&d->telemetry);
        collect_xid_stop(d);
        sensors_stop(d);
}
