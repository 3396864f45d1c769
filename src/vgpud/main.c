/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * main.c — vgpud: options, the configuration, the sd-event loop and the service protocol
 * (READY=1, WATCHDOG=1 at half of WATCHDOG_USEC, STATUS=, reload on SIGHUP, a clean stop on
 * SIGTERM: stop accepting, finish what is open, exit). The only place that exits.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "vgpu/root.h"
#include "http.h"
#include "log.h"
#include "snmp-agent.h"
#include "vgpu/host.h"
#include "fleet.h"
#include "vgpud.h"

#define DRAIN_TIMEOUT_USEC (5 * 1000000ULL) /* SIGTERM: how long open requests may take to finish */

struct options {
        const char *config; /* NULL: VGPUD_CONFIG_PATH under VGPU_ROOT */
        bool check_config;
        bool verbose;
};

static void help(void) {
        printf("Usage: vgpud [OPTIONS]\n\n"
               "The vGPU host daemon: local HTTP/JSON API on a UNIX socket, telemetry and thermal policy,\n"
               "Prometheus metrics, restore of the saved carve-up when parents appear.\n\n"
               "Options:\n"
               "  -c, --config FILE    the configuration (default " VGPUD_CONFIG_PATH " under VGPU_ROOT)\n"
               "      --check-config   check the configuration and exit (0: good)\n"
               "  -v, --verbose        log debug messages too\n"
               "  -h, --help           show this help\n"
               "  -V, --version        show the version\n\n"
               "Environment: VGPU_ROOT prefixes every host path (default /), the socket and state too.\n"
               "Signals: SIGHUP reloads the configuration, SIGTERM stops after the requests in flight.\n");
}

static int parse_options(int argc, char **argv, struct options *o) {
        static const struct option longs[] = {
                { "config", required_argument, NULL, 'c' }, { "check-config", no_argument, NULL, 1 },
                { "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },      {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "c:vhV", longs, NULL)) != -1)
                switch (c) {
                case 'c':
                        o->config = optarg;
                        break;
                case 1:
                        o->check_config = true;
                        break;
                case 'v':
                        o->verbose = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("vgpud %s\n", vgpu_version());
                        return 0;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "vgpud: unexpected argument '%s' (see vgpud --help)\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int load_config(struct vgpud *d, struct vgpud_config **ret, struct vgpu_error *err) {
        return vgpud_config_load(d->config_path, d->config_host_path, ret, err);
}

/* The group and the bearer token follow the configuration (reload changes them). */
static int apply_identity(struct vgpud *d, const struct vgpud_config *c) {
        struct group *gr = getgrnam(c->group);
        d->have_group = gr != NULL;
        d->group_gid = gr ? gr->gr_gid : (gid_t) -1;
        if (!gr)
                log_notice(
                        "group '%s' does not exist on this host: only root may change things through the API",
                        c->group);

        free(d->api_token);
        d->api_token = NULL;
        if (!c->api.enabled)
                return 0;
        char token[512];
        int n = vgpu_root_read(c->api_token_file, token, sizeof(token));
        if (n <= 0) {
                log_error("%s%s: cannot read the API token: %s", vgpu_root_prefix(), c->api_token_file,
                          n == 0 ? "empty" : strerror(-n));
                return n == 0 ? -EINVAL : n;
        }
        if (!(d->api_token = strdup(token)))
                return -ENOMEM;
        return 0;
}

/* Member by member: memcmp would also compare the padding, which two equal configurations need
 * not share, and announce a listener change that is none. */
static bool addr_equal(const struct vgpud_addr *a, const struct vgpud_addr *b) {
        return a->enabled == b->enabled && a->port == b->port && streq(a->host, b->host);
}

static bool fleet_config_equal(const struct vgpud_fleet_config *a, const struct vgpud_fleet_config *b) {
        size_t i = 0;
        for (; a->endpoints && b->endpoints && a->endpoints[i] && b->endpoints[i]; i++)
                if (!streq(a->endpoints[i], b->endpoints[i]))
                        return false;
        return (a->endpoints ? a->endpoints[i] : NULL) == (b->endpoints ? b->endpoints[i] : NULL) &&
               streq_ptr(a->cluster, b->cluster) && streq_ptr(a->host, b->host) &&
               streq_ptr(a->address, b->address) && streq_ptr(a->ca, b->ca) && streq_ptr(a->cert, b->cert) &&
               streq_ptr(a->key, b->key) && streq_ptr(a->user, b->user) &&
               streq_ptr(a->password, b->password) && a->lease_ttl_s == b->lease_ttl_s;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct vgpud *d = userdata;
        struct vgpud_config *c;
        struct vgpu_error err = {};
        (void) s, (void) si;
        sd_notify(0, "RELOADING=1");
        if (load_config(d, &c, &err) < 0) {
                event_add(d, EV_CONFIG_REJECTED, LOG_ERR, NULL, NULL, VGPU_TEMP_UNKNOWN,
                          "reload: %s (keeping the running configuration)", err.message);
                sd_notify(0, "READY=1");
                return 0;
        }
        if (!streq(c->socket_path, d->config->socket_path) || c->socket_mode != d->config->socket_mode ||
            !addr_equal(&c->metrics, &d->config->metrics) || !addr_equal(&c->api, &d->config->api) ||
            c->snmp_enabled != d->config->snmp_enabled ||
            !streq(c->snmp_agentx_socket, d->config->snmp_agentx_socket))
                log_notice("reload: listener changes take effect when vgpud restarts");
        /* the fleet's threads hold their own copy: leaving and joining again is a restart */
        if (!fleet_config_equal(&c->fleet, &d->config->fleet))
                log_notice("reload: [fleet] changes take effect when vgpud restarts");
        struct vgpud_config *old = d->config;
        d->config = c;
        if (apply_identity(d, c) < 0)
                log_warning("reload: the TCP API refuses every request until the token can be read");
        vgpud_config_free(old);
        event_add(d, EV_CONFIG_RELOADED, LOG_NOTICE, NULL, NULL, VGPU_TEMP_UNKNOWN,
                  "reloaded %s (poll every %.1f s, warn %d C, critical %d C)", c->source,
                  c->poll_interval_usec / 1e6, c->thermal.warn_c, c->thermal.critical_c);
        /* new thresholds and collectors apply at once */
        if (d->poll_timer)
                sd_event_source_set_time_accuracy(d->poll_timer, c->poll_interval_usec / 20);
        collect_soon(d, 0);
        sd_notify(0, "READY=1");
        return 0;
}

static int on_drain(sd_event_source *s, uint64_t usec, void *userdata) {
        struct vgpud *d = userdata;
        static uint64_t deadline;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        (void) usec;
        if (!deadline)
                deadline = now + DRAIN_TIMEOUT_USEC;
        unsigned open = listener_connections(d->local) + listener_connections(d->tcp_api) +
                        listener_connections(d->metrics);
        if (open == 0 || now >= deadline) {
                if (open)
                        log_warning("stopping with %u connection%s still open", open, open == 1 ? "" : "s");
                sd_event_source_set_enabled(s, SD_EVENT_OFF); /* floating: the loop frees it */
                return sd_event_exit(d->event, 0);
        }
        sd_event_source_set_time(s, now + 20 * 1000);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct vgpud *d = userdata;
        (void) s;
        if (d->stopping)
                return 0;
        /* The request that was running when the signal came has finished: the loop handles
         * one thing at a time. Now refuse new ones and let the open ones finish. */
        d->stopping = true;
        sd_notify(0, "STOPPING=1");
        log_info("signal %u: stopping", si->ssi_signo);
        listener_quiesce(d->local);
        listener_quiesce(d->tcp_api);
        listener_quiesce(d->metrics);
        collect_stop(d);
        return sd_event_add_time(d->event, NULL, CLOCK_MONOTONIC, 0, 0, on_drain, d);
}

static int on_watchdog(sd_event_source *s, uint64_t usec, void *userdata) {
        uint64_t *interval = userdata;
        (void) usec; /* when it was due, not now: a late ping must not bring the next one forward */
        sd_notify(0, "WATCHDOG=1");
        sd_event_source_set_time(s, now_usec(CLOCK_MONOTONIC) + *interval);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int run(struct vgpud *d) {
        static uint64_t watchdog_interval;
        int r;

        if ((r = sd_event_new(&d->event)) < 0)
                return r;
        /* sd-event takes signals through a signalfd: they must be blocked first */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN); /* a client that hangs up is an error return, not death */
        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_stop, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_stop, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_reload, d)) < 0)
                return r;

        if ((r = apply_identity(d, d->config)) < 0)
                return r;
        if ((r = listener_open_local(d, &d->local)) < 0)
                return r;
        if (d->config->metrics.enabled &&
            (r = listener_open_tcp(d, LISTENER_METRICS, &d->config->metrics, &d->metrics)) < 0)
                return r;
        if (d->config->api.enabled &&
            (r = listener_open_tcp(d, LISTENER_TCP_API, &d->config->api, &d->tcp_api)) < 0)
                return r;

        /* the first poll before READY=1: the API and /metrics have data from the first request */
        (void) collect_poll(d);
        if (d->config->restore_on_start && collect_restore(d, "start") > 0)
                (void) collect_poll(d);
        if ((r = collect_start(d)) < 0)
                return r;
        if ((r = snmp_agent_start(d)) < 0)
                return r;
        /* after the first poll: the inventory it publishes is there */
        if ((r = fleet_start(d)) < 0)
                return r;

        uint64_t wd;
        if (sd_watchdog_enabled(0, &wd) > 0) {
                watchdog_interval = wd / 2;
                if ((r = sd_event_add_time(d->event, &d->watchdog_timer, CLOCK_MONOTONIC, 0, 0, on_watchdog,
                                           &watchdog_interval)) < 0)
                        return r;
        }

        log_info("vgpud %s: API on %s, metrics on %s, TCP API on %s; polling every %.1f s (%s)",
                 vgpu_version(), listener_name(d->local), d->metrics ? listener_name(d->metrics) : "(off)",
                 d->tcp_api ? listener_name(d->tcp_api) : "(off)", d->config->poll_interval_usec / 1e6,
                 d->config->source);
        sd_notify(0, "READY=1");
        collect_notify_status(d);
        return sd_event_loop(d->event);
}

static void done(struct vgpud *d) {
        fleet_stop(d); /* first: its worker may be creating an instance through libvgpu */
        collect_stop(d);
        snmp_agent_stop(d);
        hook_stop(d);
        d->watchdog_timer = sd_event_source_unref(d->watchdog_timer);
        d->local = listener_free(d->local);
        d->tcp_api = listener_free(d->tcp_api);
        d->metrics = listener_free(d->metrics);
        d->event = sd_event_unref(d->event);
        events_clear(d);
        metrics_clear(d);
        vgpud_config_free(d->config);
        free(d->api_token);
}

int main(int argc, char **argv) {
        struct options o = {};
        int r = parse_options(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        log_setup(o.verbose ? LOG_DEBUG : LOG_INFO);

        static struct vgpud d; /* static: the event ring is large */
        d.config_path = (char *) (o.config ? o.config : VGPUD_CONFIG_PATH);
        d.config_host_path = !o.config;
        struct vgpu_error err = {};
        if (load_config(&d, &d.config, &err) < 0) {
                fprintf(stderr, "vgpud: %s\n", err.message);
                sd_notifyf(0, "STATUS=bad configuration: %s", err.message);
                return 1;
        }
        if (o.check_config) {
                printf("%s: ok\n", d.config->source);
                vgpud_config_free(d.config);
                return 0;
        }
        r = run(&d);
        if (r < 0) {
                log_error("stopped: %s", strerror(-r));
                sd_notifyf(0, "STATUS=failed: %s\nERRNO=%d", strerror(-r), -r);
        } else
                log_info("stopped");
        done(&d);
        return r < 0 ? 1 : 0;
}
