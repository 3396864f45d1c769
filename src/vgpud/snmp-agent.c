/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * snmp-agent.c — vgpud as an AgentX subagent: VGPU-MIB's tables from the last poll, and its
 * notifications, through net-snmp's agent library on vgpud's one sd-event loop.
 *
 * net-snmp wants to own the loop (select() in agent_check_and_process(1)); here it never
 * blocks: its sockets (snmp_select_info) are sd-event io sources, its next timeout or alarm
 * (alarms without SIGALRM) a timer, and each wake-up is agent_check_and_process(0), which
 * polls with a zero timeout. The set of sockets changes when the master goes away and the
 * subagent connects again (the AgentX ping alarm), so it is taken again after every round, and a
 * timer of at most a second covers a socket closed and opened again under the same number.
 *
 * The MIB is served by one handler for the whole vgpuObjects subtree: each request lists the
 * instances in OID order (a few hundred at most: GPUs x columns) and answers GET by exact match,
 * GETNEXT by the first one after. A column whose value is unknown has no instance, as SNMP
 * tables do for sparse rows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>

#include "vgpu/root.h"
#include "log.h"
#include "snmp-agent.h"
#include "vgpud.h"

#define MAX_FDS      16
#define VGPU_MIB_OID 1, 3, 6, 1, 3, 9835 /* vgpuMIB: { experimental 9835 } */
#define MiB          (1024 * 1024)

static const oid objects_oid[] = { VGPU_MIB_OID, 1 }; /* vgpuObjects */
static const oid notifications_oid[] = { VGPU_MIB_OID, 0 };
static const oid event_oid[] = { VGPU_MIB_OID, 1, 4 }; /* vgpuEvent: what notifications carry */
static const oid trap_oid_oid[] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0 }; /* snmpTrapOID.0 */

static struct {
        struct vgpud *d;
        bool started;
        sd_event_source *timer;
        sd_event_source *io[MAX_FDS];
        int fds[MAX_FDS];
        size_t n_fds;
} agent;

/* One instance of the MIB: vgpuObjects.TABLE.1.COLUMN.ROW and its value. */
struct instance {
        oid suffix[4];
        u_char type; /* ASN_OCTET_STR, ASN_INTEGER, ASN_GAUGE, ASN_UNSIGNED, ASN_COUNTER */
        long number;
        const char *string; /* points into the daemon's state, valid for this request */
};

struct instances {
        struct instance *v;
        size_t n, allocated;
        char (*strings)[32]; /* formatted values ("10de:1eb8") */
        size_t n_strings;
};

static int add(struct instances *l, unsigned table, unsigned column, size_t row, u_char type, long number,
               const char *string) {
        if (l->n == l->allocated) {
                size_t n = l->allocated ? l->allocated * 2 : 64;
                struct instance *v = reallocarray(l->v, n, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->allocated = n;
        }
        l->v[l->n++] = (struct instance){
                .suffix = { table, 1, column, row + 1 }, .type = type, .number = number, .string = string
        };
        return 0;
}

static long mib(int64_t bytes) {
        return (long) (bytes / MiB);
}

/* Column by column, row by row: OID order, without sorting. */
static int list_gpus(struct instances *l, const struct vgpud *d) {
        const struct vgpu_host *h = d->host;
        size_t n = h ? h->n_gpus : 0;
        int r = 0;
        free(l->strings);
        if (!(l->strings = calloc(n ? n : 1, sizeof(*l->strings))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                snprintf(l->strings[i], sizeof(l->strings[i]), "%04x:%04x", h->gpus[i].vendor_id,
                         h->gpus[i].device_id);
        for (unsigned c = 2; c <= 9 && r == 0; c++)
                for (size_t i = 0; i < n && r == 0; i++) {
                        const struct vgpu_gpu *g = &h->gpus[i];
                        const struct vgpu_gpu_telemetry *t = vgpud_gpu_health(d, g);
                        const char *state = vgpud_gpu_state(t);
                        switch (c) {
                        case 2:
                                r = add(l, 1, c, i, ASN_OCTET_STR, 0, g->bdf);
                                break;
                        case 3:
                                r = add(l, 1, c, i, ASN_OCTET_STR, 0,
                                        t && t->model ? t->model : l->strings[i]);
                                break;
                        case 4:
                                if (t && t->temperature_c != VGPU_TEMP_UNKNOWN)
                                        r = add(l, 1, c, i, ASN_INTEGER, t->temperature_c, NULL);
                                break;
                        case 5:
                                r = add(l, 1, c, i, ASN_INTEGER, t ? (long) t->thermal : 0, NULL);
                                break;
                        case 6:
                                if (t && t->memory_total >= 0)
                                        r = add(l, 1, c, i, ASN_GAUGE, mib(t->memory_total), NULL);
                                break;
                        case 7:
                                if (t && t->memory_used >= 0)
                                        r = add(l, 1, c, i, ASN_GAUGE, mib(t->memory_used), NULL);
                                break;
                        case 8:
                                if (t && t->utilization_gpu >= 0)
                                        r = add(l, 1, c, i, ASN_GAUGE, t->utilization_gpu, NULL);
                                break;
                        case 9:
                                r = add(l, 1, c, i, ASN_INTEGER,
                                        streq(state, "ok")         ? 1
                                        : streq(state, "degraded") ? 2
                                                                   : 0,
                                        NULL);
                                break;
                        }
                }
        return r;
}

static int list_instances(struct instances *l, const struct vgpud *d) {
        const struct vgpu_host *h = d->host;
        size_t n = h ? h->n_instances : 0;
        int r = 0;
        for (unsigned c = 2; c <= 5 && r == 0; c++)
                for (size_t i = 0; i < n && r == 0; i++) {
                        const struct vgpu_instance *in = &h->instances[i];
                        const char *s = c == 2                        ? in->uuid
                                        : c == 3                      ? in->parent
                                        : c == 4                      ? in->type
                                        : d->domains && d->domains[i] ? d->domains[i]
                                                                      : "";
                        r = add(l, 2, c, i, ASN_OCTET_STR, 0, strempty(s));
                }
        return r;
}

static int list_slices(struct instances *l, const struct vgpud *d) {
        int r = 0;
        for (unsigned c = 2; c <= 8 && r == 0; c++)
                for (size_t i = 0; i < d->n_slices && r == 0; i++) {
                        const struct vgpu_slice_status *s = &d->slices[i];
                        switch (c) {
                        case 2:
                                r = add(l, 3, c, i, ASN_OCTET_STR, 0, s->spec.name);
                                break;
                        case 3:
                                r = add(l, 3, c, i, ASN_OCTET_STR, 0, s->spec.gpu);
                                break;
                        case 4:
                                r = add(l, 3, c, i, ASN_UNSIGNED, s->spec.share, NULL);
                                break;
                        case 5:
                                r = add(l, 3, c, i, ASN_GAUGE, mib(s->spec.memory), NULL);
                                break;
                        case 6:
                                r = add(l, 3, c, i, ASN_GAUGE, mib(s->usage.used), NULL);
                                break;
                        case 7:
                                r = add(l, 3, c, i, ASN_GAUGE, s->usage.processes, NULL);
                                break;
                        case 8:
                                r = add(l, 3, c, i, ASN_COUNTER, (long) (uint32_t) s->usage.oom_count, NULL);
                                break;
                        }
                }
        return r;
}

static void instances_free(struct instances *l) {
        free(l->v);
        free(l->strings);
}

static void instance_oid(const struct instance *in, oid *buf, size_t *len) {
        memcpy(buf, objects_oid, sizeof(objects_oid));
        memcpy(buf + OID_LENGTH(objects_oid), in->suffix, sizeof(in->suffix));
        *len = OID_LENGTH(objects_oid) + 4;
}

static void set_value(netsnmp_variable_list *vb, const struct instance *in) {
        if (in->type == ASN_OCTET_STR)
                snmp_set_var_typed_value(vb, ASN_OCTET_STR, in->string, strlen(in->string));
        else {
                long v = in->number;
                snmp_set_var_typed_value(vb, in->type, &v, sizeof(v));
        }
}

static int handle_request(netsnmp_mib_handler *handler, netsnmp_handler_registration *reg,
                          netsnmp_agent_request_info *info, netsnmp_request_info *requests) {
        _cleanup_(instances_free) struct instances l = {};
        (void) handler, (void) reg;
        if (info->mode != MODE_GET && info->mode != MODE_GETNEXT)
                return SNMP_ERR_NOERROR; /* read-only: the registration refuses SETs */
        if (list_gpus(&l, agent.d) < 0 || list_instances(&l, agent.d) < 0 || list_slices(&l, agent.d) < 0)
                return SNMP_ERR_GENERR;

        for (netsnmp_request_info *req = requests; req; req = req->next) {
                netsnmp_variable_list *vb = req->requestvb;
                oid name[MAX_OID_LEN];
                size_t len;
                bool answered = false;
                if (req->processed)
                        continue;
                for (size_t i = 0; i < l.n && !answered; i++) {
                        instance_oid(&l.v[i], name, &len);
                        int cmp = snmp_oid_compare(name, len, vb->name, vb->name_length);
                        if (info->mode == MODE_GET && cmp == 0) {
                                set_value(vb, &l.v[i]);
                                answered = true;
                        } else if (info->mode == MODE_GETNEXT && cmp > 0) {
                                snmp_set_var_objid(vb, name, len);
                                set_value(vb, &l.v[i]);
                                answered = true;
                        }
                }
                /* GETNEXT past our last instance: left unanswered, the agent goes on to the next
                 * registered subtree */
                if (!answered && info->mode == MODE_GET)
                        netsnmp_set_request_error(info, req, SNMP_NOSUCHINSTANCE);
        }
        return SNMP_ERR_NOERROR;
}

/* net-snmp's messages into vgpud's log; they end in a newline. */
static int on_log(int major, int minor, void *server_arg, void *client_arg) {
        const struct snmp_log_message *m = server_arg;
        (void) major, (void) minor, (void) client_arg;
        size_t n = strlen(m->msg);
        while (n > 0 && m->msg[n - 1] == '\n')
                n--;
        /* one level down: a lost master is a warning of ours, not an error of the daemon */
        log_full(m->priority < LOG_WARNING ? LOG_WARNING : m->priority, NULL, "snmp: %.*s", (int) n, m->msg);
        return 0;
}

static void sync_loop(void);

static void process(void) {
        agent_check_and_process(0); /* a zero timeout: reads what is ready, runs due alarms */
        sync_loop();
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) s, (void) fd, (void) revents, (void) userdata;
        process();
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s, (void) usec, (void) userdata;
        process();
        return 0;
}

static void drop_io(void) {
        for (size_t i = 0; i < agent.n_fds; i++)
                agent.io[i] = sd_event_source_disable_unref(agent.io[i]);
        agent.n_fds = 0;
}

/* Watch net-snmp's sockets and wake for its next timeout or alarm. */
static void sync_loop(void) {
        int numfds = 0, block = 0;
        fd_set set;
        struct timeval tv = { .tv_sec = 1 }; /* at most: see the top of the file */
        FD_ZERO(&set);
        snmp_select_info(&numfds, &set, &tv, &block);

        int fds[MAX_FDS];
        size_t n = 0;
        for (int fd = 0; fd < numfds && n < MAX_FDS; fd++)
                if (FD_ISSET(fd, &set))
                        fds[n++] = fd;
        if (n != agent.n_fds || memcmp(fds, agent.fds, n * sizeof(int)) != 0) {
                drop_io();
                for (size_t i = 0; i < n; i++) {
                        if (sd_event_add_io(agent.d->event, &agent.io[agent.n_fds], fds[i], EPOLLIN, on_io,
                                            NULL) < 0) {
                                log_warning("snmp: cannot watch socket %d; it is read once a second", fds[i]);
                                continue;
                        }
                        agent.fds[agent.n_fds++] = fds[i];
                }
        }
        uint64_t delay = block ? 1000000ULL : (uint64_t) tv.tv_sec * 1000000ULL + (uint64_t) tv.tv_usec;
        if (delay > 1000000ULL)
                delay = 1000000ULL;
        sd_event_source_set_time(agent.timer, now_usec(CLOCK_MONOTONIC) + delay);
        sd_event_source_set_enabled(agent.timer, SD_EVENT_ONESHOT);
}

int snmp_agent_start(struct vgpud *d) {
        const struct vgpud_config *c = d->config;
        char socket[PATH_MAX];
        if (!c->snmp_enabled || agent.started)
                return 0;
        /* a path is a host path (under VGPU_ROOT); "tcp:127.0.0.1:705" and the like are not */
        if (c->snmp_agentx_socket[0] == '/') {
                int r = vgpu_root_path(socket, sizeof(socket), c->snmp_agentx_socket);
                if (r < 0)
                        return r;
        } else
                snprintf(socket, sizeof(socket), "%s", c->snmp_agentx_socket);

        agent.d = d;
        snmp_disable_log();
        snmp_enable_calllog();
        snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, on_log, NULL);
        netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 1); /* a subagent */
        netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET, socket);
        /* alarms from the loop's timer, not SIGALRM */
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
        /* vgpud.conf is the configuration: no snmp.conf, no MIB files, no state under /var/lib/snmp */
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
        netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
        setenv("MIBS", "", 1);
        if (init_agent("vgpud") != 0) {
                log_error("snmp: cannot start net-snmp's agent library");
                return -EIO;
        }
        netsnmp_handler_registration *reg = netsnmp_create_handler_registration(
                "vgpuObjects", handle_request, objects_oid, OID_LENGTH(objects_oid), HANDLER_CAN_RONLY);
        if (!reg || netsnmp_register_handler(reg) != MIB_REGISTERED_OK) {
                log_error("snmp: cannot register VGPU-MIB");
                return -EIO;
        }
        init_snmp("vgpud");
        /* without a master, or after losing it: try again every 5 s (set after init_snmp, which
         * resets it to net-snmp's 15 s) */
        netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL, 5);
        agent.started = true;
        int r = sd_event_add_time(d->event, &agent.timer, CLOCK_MONOTONIC, 0, 0, on_timer, NULL);
        if (r < 0)
                return r;
        sync_loop();
        log_info("snmp: AgentX subagent of %s", socket);
        return 0;
}

void snmp_agent_stop(struct vgpud *d) {
        (void) d;
        if (!agent.started)
                return;
        drop_io();
        agent.timer = sd_event_source_disable_unref(agent.timer);
        snmp_shutdown("vgpud");
        agent.started = false;
}

static void add_var(netsnmp_variable_list **vars, unsigned n, u_char type, const void *value, size_t size) {
        oid name[OID_LENGTH(event_oid) + 2];
        memcpy(name, event_oid, sizeof(event_oid));
        name[OID_LENGTH(event_oid)] = n;
        name[OID_LENGTH(event_oid) + 1] = 0;
        snmp_varlist_add_variable(vars, name, OID_LENGTH(name), type, value, size);
}

void snmp_agent_notify(struct vgpud *d, enum snmp_notification n, const char *bdf, int temperature_c,
                       uint64_t xid, const char *message) {
        (void) d;
        if (!agent.started)
                return;
        oid trap[OID_LENGTH(notifications_oid) + 1];
        memcpy(trap, notifications_oid, sizeof(notifications_oid));
        trap[OID_LENGTH(notifications_oid)] = n;

        netsnmp_variable_list *vars = NULL;
        snmp_varlist_add_variable(&vars, trap_oid_oid, OID_LENGTH(trap_oid_oid), ASN_OBJECT_ID, trap,
                                  sizeof(trap));
        if (n != SNMP_NOTIFY_BMC_OVER_TEMPERATURE && n != SNMP_NOTIFY_BMC_UNDER_VOLTAGE)
                add_var(&vars, 1, ASN_OCTET_STR, strempty(bdf), strlen(strempty(bdf)));
        if (n == SNMP_NOTIFY_THERMAL_WARNING || n == SNMP_NOTIFY_THERMAL_CRITICAL) {
                long t = temperature_c;
                add_var(&vars, 2, ASN_INTEGER, &t, sizeof(t));
        }
        if (n == SNMP_NOTIFY_XID_CRITICAL) {
                long x = (long) (uint32_t) xid;
                add_var(&vars, 3, ASN_UNSIGNED, &x, sizeof(x));
        }
        size_t len = strlen(strempty(message));
        add_var(&vars, 4, ASN_OCTET_STR, strempty(message), len > 255 ? 255 : len);
        if (!vars) {
                log_error("snmp: out of memory for a notification");
                return;
        }
        send_v2trap(vars); /* to the master over AgentX; queued nowhere when it is away */
        snmp_free_varbind(vars);
        sync_loop(); /* the write may have found the master gone */
}
